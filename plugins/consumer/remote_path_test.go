package consumer

import "testing"

func TestCleanRepoPath(t *testing.T) {
	for p, want := range map[string]bool{
		"Runfile": true, "a/b/x.Runfile": true, ".hidden/Runfile": true,
		"": false, "/Runfile": false, "a/../Runfile": false, "../Runfile": false, "./Runfile": false,
		"a//Runfile": false, ".git/Runfile": false, "a/.GIT/Runfile": false, "a\nb/Runfile": false, "a/": false,
	} {
		if got := cleanRepoPath(p); got != want {
			t.Errorf("cleanRepoPath(%q) = %v, want %v", p, got, want)
		}
	}
}
