package main

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/runprov/runprov/core/coretest"
)

// sshKeygen makes an ed25519 key pair without a passphrase at path and
// returns the public key line.
func sshKeygen(t *testing.T, path string) string {
	t.Helper()
	bin := coretest.RequireBinary(t, "ssh-keygen")
	if out, err := exec.Command(bin, "-q", "-t", "ed25519", "-N", "", "-C", "runprov-test", "-f", path).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v\n%s", err, out)
	}
	pub, err := os.ReadFile(path + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(pub))
}

// testSSHD is a real sshd on 127.0.0.1 with a temporary host key that lets
// in the current user with one throwaway key.
type testSSHD struct {
	addr       string // 127.0.0.1:PORT
	user       string
	key        string // the client's private key file
	knownHosts string // a known_hosts file that names the host key
}

func startSSHD(t *testing.T) *testSSHD {
	t.Helper()
	const sshd = "/usr/sbin/sshd"
	if _, err := os.Stat(sshd); err != nil {
		coretest.Unavailable(t, sshd+" is missing: install openssh-server")
	}
	me, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() == 0 {
		// sshd running as root wants its privilege separation directory.
		if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
			t.Fatal(err)
		}
	}
	dir := t.TempDir()
	hostPub := sshKeygen(t, filepath.Join(dir, "host_key"))
	clientPub := sshKeygen(t, filepath.Join(dir, "client_key"))
	if err := os.WriteFile(filepath.Join(dir, "authorized_keys"), []byte(clientPub+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	_, port, _ := net.SplitHostPort(addr)
	config := fmt.Sprintf(`ListenAddress 127.0.0.1:%s
HostKey %s
PidFile %s
AuthorizedKeysFile %s
AuthenticationMethods publickey
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
PermitRootLogin prohibit-password
AllowUsers %s
`, port, filepath.Join(dir, "host_key"), filepath.Join(dir, "sshd.pid"), filepath.Join(dir, "authorized_keys"), me.Username)
	if err := os.WriteFile(filepath.Join(dir, "sshd_config"), []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(sshd, "-D", "-e", "-f", filepath.Join(dir, "sshd_config"))
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatalf("start sshd: %v", err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("sshd log:\n%s", logs.String())
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("sshd does not listen on %s: %v\n%s", addr, err, logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	knownHosts := filepath.Join(dir, "known_hosts")
	if err := os.WriteFile(knownHosts, []byte(fmt.Sprintf("[127.0.0.1]:%s %s\n", port, hostPub)), 0o600); err != nil {
		t.Fatal(err)
	}
	return &testSSHD{addr: addr, user: me.Username, key: filepath.Join(dir, "client_key"), knownHosts: knownHosts}
}

// TestRemoteCLISSH pushes to and pulls from a bare repository through a real
// sshd with --ssh-key, and checks the refusals: a key the server does not
// accept, and a host key that is not known.
func TestRemoteCLISSH(t *testing.T) {
	srv := startSSHD(t)
	// go-git checks host keys against $SSH_KNOWN_HOSTS, else ~/.ssh.
	t.Setenv("SSH_KNOWN_HOSTS", srv.knownHosts)
	t.Setenv("SSH_AUTH_SOCK", "")
	bare := remoteBare(t, t.TempDir(), "r.git")
	url := fmt.Sprintf("ssh://%s@%s%s", srv.user, srv.addr, bare)

	a, b := newCLIStore(t), newCLIStore(t)
	hashes := addRunfiles(t, a, "Runfile", "ssh/job.Runfile")
	out, _ := mustCLI(t, 0, a, "push", "--ssh-key", srv.key, url)
	if strings.TrimSpace(out) != hashes[1] {
		t.Fatalf("push printed %q, want %s", out, hashes[1])
	}
	if got := coretest.Git(t, bare, "rev-parse", "main"); got != hashes[1] {
		t.Fatalf("remote main is %s after the ssh push, want %s", got, hashes[1])
	}
	out, _ = mustCLI(t, 0, b, "pull", "--ssh-key", srv.key, url)
	if strings.TrimSpace(out) != hashes[1] {
		t.Fatalf("pull printed %q, want %s", out, hashes[1])
	}
	sameLogAndCat(t, a, b, hashes)
	fsckHolds(t, b)

	// Another commit goes a -> remote -> b.
	hashes = append(hashes, addRunfiles(t, a, "Runfile")...)
	mustCLI(t, 0, a, "push", "--ssh-key", srv.key, url)
	mustCLI(t, 0, b, "pull", "--ssh-key", srv.key, url)
	sameLogAndCat(t, a, b, hashes)

	// Refusals: exit 125, a clear message, nothing changed.
	stranger := filepath.Join(t.TempDir(), "stranger_key")
	sshKeygen(t, stranger)
	emptyKnown := filepath.Join(t.TempDir(), "known_hosts")
	if err := os.WriteFile(emptyKnown, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	hashes = append(hashes, addRunfiles(t, a, "more.Runfile")...)
	for _, tc := range []struct {
		name, store, known string
		args               []string
		want               string
	}{
		{"key not authorized, push", a, srv.knownHosts, []string{"push", "--ssh-key", stranger, url}, "refused the key"},
		{"key not authorized, pull", b, srv.knownHosts, []string{"pull", "--ssh-key", stranger, url}, "refused the key"},
		{"host key not known, push", a, emptyKnown, []string{"push", "--ssh-key", srv.key, url}, "host key is not known"},
		{"host key not known, pull", b, emptyKnown, []string{"pull", "--ssh-key", srv.key, url}, "host key is not known"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("SSH_KNOWN_HOSTS", tc.known)
			before := storeState(t, tc.store)
			remoteBefore := coretest.Git(t, bare, "for-each-ref")
			_, errs := mustCLI(t, 125, tc.store, tc.args...)
			if !strings.Contains(errs, tc.want) {
				t.Errorf("stderr lacks %q:\n%s", tc.want, errs)
			}
			if after := storeState(t, tc.store); after != before {
				t.Errorf("the store changed:\n%s\n%s", before, after)
			}
			if after := coretest.Git(t, bare, "for-each-ref"); after != remoteBefore {
				t.Errorf("the remote changed:\n%s\n%s", remoteBefore, after)
			}
			fsckHolds(t, tc.store)
		})
	}
	// The last commit still goes through with the right key.
	mustCLI(t, 0, a, "push", "--ssh-key", srv.key, url)
	mustCLI(t, 0, b, "pull", "--ssh-key", srv.key, url)
	sameLogAndCat(t, a, b, hashes)
	fsckHolds(t, b)

	_, port, _ := net.SplitHostPort(srv.addr)
	for _, s := range []string{a, b} {
		grepStore(t, s, url, srv.addr, ":"+port+"/", srv.key, bare, "[remote", "refs/remotes")
	}
}
