package consumer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path"
	"runtime"
	"strings"
	"sync"

	"github.com/runprov/runprov/core"
	"github.com/runprov/runprov/runfile"
)

// DefaultRunfileGlobs select the Runfiles of pulled commits when no --path
// is given: files named Runfile or NAME.Runfile, in any directory.
var DefaultRunfileGlobs = []string{"Runfile", "*.Runfile"}

// maxReported bounds the invalid Runfiles one refused pull lists.
const maxReported = 10

// errRepoMoved: the stored repo changed between the fetch and the write.
var errRepoMoved = errors.New("repo changed while pulling")

// PushRequest sends a repository's branch to a git remote.
type PushRequest struct {
	Repo   string // core.DefaultRepo when empty
	Remote core.Remote
	Branch string // branch on the remote; core.DefaultBranch when empty
	Force  bool   // overwrite a remote branch the local one does not contain
}

// PushResult says what the remote branch held before and holds now.
type PushResult struct {
	Repo     string `json:"repo"`
	Branch   string `json:"branch"`
	Old      string `json:"old"` // "" when the branch was new
	Head     string `json:"head"`
	UpToDate bool   `json:"up_to_date"`
}

// PullRequest fetches a remote branch and fast-forwards a repository to it.
type PullRequest struct {
	Repo   string // core.DefaultRepo when empty; created when missing
	Remote core.Remote
	Branch string   // branch on the remote; core.DefaultBranch when empty
	Paths  []string // globs selecting Runfiles; DefaultRunfileGlobs when empty
}

// PullResult is what a pull or add --from did.
type PullResult struct {
	Repo    string        `json:"repo"`
	Ref     string        `json:"ref"`  // the remote ref, e.g. refs/heads/main
	Old     string        `json:"old"`  // head before, "" for a new repo
	Head    string        `json:"head"` // head after
	Commits int           `json:"commits"`
	Indexed []core.Commit `json:"indexed"` // index rows added, oldest first
	// Ahead counts local commits the remote lacks when nothing was pulled
	// because the remote is behind.
	Ahead int `json:"ahead"`
}

// Push restores the repository and pushes its branch to the remote. It
// writes nothing to the store. A remote branch the local one does not
// contain is refused with an error wrapping core.ErrNonFastForward unless
// req.Force is set.
func (c *Consumer) Push(ctx context.Context, req PushRequest) (PushResult, error) {
	if req.Repo == "" {
		req.Repo = core.DefaultRepo
	}
	if req.Branch == "" {
		req.Branch = core.DefaultBranch
	}
	art, err := c.Store.Repo(ctx, req.Repo)
	if err != nil {
		if errors.Is(err, core.ErrNotFound) {
			return PushResult{}, &core.NameError{Kind: core.NameRepo, Err: fmt.Errorf("push: %w", err)}
		}
		return PushResult{}, err
	}
	g, err := c.openRemote(ctx, req.Repo, art.Tarball)
	if err != nil {
		return PushResult{}, err
	}
	defer g.Close()
	old, err := g.Push(ctx, req.Remote, req.Branch, req.Force)
	if err != nil {
		return PushResult{}, fmt.Errorf("push repo %q: %w", req.Repo, err)
	}
	res := PushResult{Repo: req.Repo, Branch: req.Branch, Old: old, Head: art.Head, UpToDate: old == art.Head}
	c.logger().Debug("pushed", "repo", req.Repo, "branch", req.Branch, "old", old, "head", art.Head)
	return res, nil
}

// Pull fetches req.Branch from the remote and fast-forwards the repository
// to it. Every new commit's changed Runfiles (see selector) are validated
// as add validates them and indexed as add indexes them; one invalid
// Runfile refuses the whole pull. Diverged histories are refused with an
// error wrapping core.ErrDiverged. The network fetch happens outside the
// store's write lock; the write checks that the repo did not change in the
// meantime, retries once if it did, and otherwise changes nothing.
func (c *Consumer) Pull(ctx context.Context, req PullRequest) (PullResult, error) {
	if req.Branch == "" {
		req.Branch = core.DefaultBranch
	}
	if strings.HasPrefix(req.Branch, "refs/") {
		return PullResult{}, fmt.Errorf("%w: branch %q: give the branch name, like main", core.ErrInvalid, req.Branch)
	}
	return c.fetchInto(ctx, req.Repo, req.Remote, "refs/heads/"+req.Branch, req.Paths, "pull")
}

// fetchInto is pull and add --from: fetch ref, validate, index, store.
func (c *Consumer) fetchInto(ctx context.Context, repo string, rem core.Remote, ref string, globs []string, verb string) (PullResult, error) {
	if repo == "" {
		repo = core.DefaultRepo
	}
	if err := ValidRepoName(repo); err != nil {
		return PullResult{}, err
	}
	sel, err := newSelector(globs)
	if err != nil {
		return PullResult{}, err
	}
	for attempt := 0; ; attempt++ {
		res, err := c.fetchOnce(ctx, repo, rem, ref, sel, verb)
		if !errors.Is(err, errRepoMoved) {
			return res, err
		}
		if attempt > 0 {
			return PullResult{}, fmt.Errorf("%s: %w: repo %q changed twice while fetching (another runprov is writing to it); nothing was changed: run the command again", verb, core.ErrBusy, repo)
		}
		c.logger().Info("the repo changed while fetching; fetching again", "repo", repo)
	}
}

func (c *Consumer) fetchOnce(ctx context.Context, name string, rem core.Remote, ref string, sel selector, verb string) (PullResult, error) {
	cur, err := c.Store.Repo(ctx, name)
	if err != nil && !errors.Is(err, core.ErrNotFound) {
		return PullResult{}, err
	}
	var (
		tarball []byte
		baseSHA string
	)
	if cur != nil {
		tarball, baseSHA = cur.Tarball, cur.SHA256
	}
	g, err := c.openRemote(ctx, name, tarball)
	if err != nil {
		return PullResult{}, err
	}
	defer g.Close()
	head, err := g.Head(ctx)
	if err != nil {
		return PullResult{}, err
	}
	remoteHead, refName, err := g.Fetch(ctx, rem, ref)
	if err != nil {
		return PullResult{}, fmt.Errorf("%s into repo %q: %w", verb, name, err)
	}
	res := PullResult{Repo: name, Ref: refName, Old: head, Head: head}
	if done, err := fastForwardable(ctx, g, &res, remoteHead, verb); err != nil {
		return PullResult{}, err
	} else if done {
		return res, nil
	}
	commits, err := g.NewCommits(ctx, head, remoteHead)
	if err != nil {
		return PullResult{}, err
	}
	if cur != nil {
		sel.known.load = func() ([]core.Commit, error) { return c.Store.Commits(ctx, core.CommitFilter{Repo: name}) }
	}
	rows, err := c.indexCommits(ctx, g, name, commits, sel)
	if err != nil {
		return PullResult{}, fmt.Errorf("%s into repo %q refused, nothing was changed: %w", verb, name, err)
	}
	if err := c.storeFetched(ctx, g, name, baseSHA, remoteHead, rows); err != nil {
		return PullResult{}, err
	}
	res.Head, res.Commits, res.Indexed = remoteHead, len(commits), rows
	c.logger().Debug("fast-forwarded", "repo", name, "old", head, "head", remoteHead, "commits", len(commits), "runfiles", len(rows))
	return res, nil
}

// fastForwardable says whether the local head res.Old can move to the
// remote's: done when there is nothing to do (the same, or the local head
// is ahead: res.Ahead), an error wrapping ErrDiverged when each has commits
// the other lacks.
func fastForwardable(ctx context.Context, g core.GitRepo, res *PullResult, remoteHead, verb string) (done bool, err error) {
	head := res.Old
	if head == "" {
		return false, nil
	}
	if remoteHead == head {
		return true, nil
	}
	// The fast-forward is asked first: it is the common case, and the walk
	// back from the remote's head stops at the local head, where the other
	// question walks the whole local history.
	if ff, err := g.IsAncestor(ctx, head, remoteHead); err != nil {
		return false, err
	} else if ff {
		return false, nil
	}
	behind, err := g.IsAncestor(ctx, remoteHead, head)
	if err != nil {
		return false, err
	}
	if behind {
		ahead, err := g.NewCommits(ctx, remoteHead, head)
		if err != nil {
			return false, err
		}
		res.Ahead = len(ahead)
		return true, nil
	}
	return false, fmt.Errorf("%s into repo %q: %w: the local head %s and the remote's %s (%s) each have commits the other lacks; runprov only fast-forwards: %s",
		verb, res.Repo, core.ErrDiverged, short(head), strings.TrimPrefix(res.Ref, "refs/heads/"), short(remoteHead), divergedAdvice(verb))
}

// storeFetched stores the fast-forwarded repo and its new commit rows,
// unless the stored repo changed since baseSHA was read (errRepoMoved).
func (c *Consumer) storeFetched(ctx context.Context, g core.GitRepo, name, baseSHA, head string, rows []core.Commit) error {
	if err := g.SetHead(ctx, head); err != nil {
		return err
	}
	tar, err := g.Archive(ctx)
	if err != nil {
		return err
	}
	return c.Store.UpdateRepo(ctx, name, func(ctx context.Context, now *core.RepoArtifact) (*core.RepoUpdate, error) {
		nowSHA := ""
		if now != nil {
			nowSHA = now.SHA256
		}
		if nowSHA != baseSHA {
			return nil, errRepoMoved
		}
		return &core.RepoUpdate{Tarball: tar, Head: head, Commits: rows}, nil
	})
}

func divergedAdvice(verb string) string {
	if verb == "add --from" {
		return "consume it into a new repo with --repo NAME"
	}
	return "pull into a new repo with --repo NAME, or reconcile the histories with git and push the result"
}

// indexCommits validates the Runfiles each commit adds or changes and
// returns their index rows, oldest commit first and by path within one.
// One invalid Runfile refuses them all.
func (c *Consumer) indexCommits(ctx context.Context, g core.GitRepo, repo string, commits []core.CommitInfo, sel selector) ([]core.Commit, error) {
	rows, bad, err := c.scanCommits(ctx, g, repo, commits, sel)
	if err != nil {
		return nil, err
	}
	if len(bad) > maxReported {
		bad = append(bad[:maxReported], fmt.Errorf("... and %d more invalid Runfiles", len(bad)-maxReported))
	}
	if len(bad) > 0 {
		return nil, fmt.Errorf("%w\n(every new commit is checked, so a later fix does not help: rewrite those commits upstream and force-push)", errors.Join(bad...))
	}
	return rows, nil
}

// scanCommits returns the index rows of the Runfiles each commit adds or
// changes (see selector.pick), oldest commit first and by path within one,
// and one error per selected file that is not a valid Runfile. The files
// are read one by one (the repository is not safe for concurrent use)
// while the ones already read are parsed on the other CPUs: parsing is
// most of the work on a long history.
func (c *Consumer) scanCommits(ctx context.Context, g core.GitRepo, repo string, commits []core.CommitInfo, sel selector) ([]core.Commit, []error, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	todo := make(chan *scanned, 64)
	var wg sync.WaitGroup
	for range runtime.GOMAXPROCS(0) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for f := range todo {
				parseOne(f)
			}
		}()
	}
	files, err := changedRunfiles(ctx, g, commits, sel, todo)
	close(todo)
	wg.Wait()
	if err != nil {
		return nil, nil, err
	}
	var (
		rows []core.Commit
		bad  []error
	)
	for _, f := range files {
		switch {
		case f.err != nil:
			bad = append(bad, f.err)
		case f.rf != nil:
			rows = append(rows, indexRow(repo, f.path, f.blob, f.rf, f.commit))
		}
	}
	return rows, bad, nil
}

// scanned is one selected file of one commit: read by changedRunfiles,
// then parsed (rf) or refused (err) by parseOne.
type scanned struct {
	commit core.CommitInfo
	path   string
	how    how
	data   []byte
	blob   string
	rf     *runfile.File
	err    error
}

// changedRunfiles reads the selected files each commit adds or changes, in
// order, and hands each to parse; a file at an unsafe path comes with its
// error and is not handed on.
func changedRunfiles(ctx context.Context, g core.GitRepo, commits []core.CommitInfo, sel selector, parse chan<- *scanned) ([]*scanned, error) {
	var files []*scanned
	for _, ci := range commits {
		changes, err := g.Changes(ctx, ci.Hash)
		if err != nil {
			return nil, err
		}
		trailer := trailerPaths(ci.Message)
		for _, ch := range changes {
			how := sel.pick(ch.Path, trailer)
			if how == notRunfile {
				continue
			}
			if !cleanRepoPath(ch.Path) {
				if how != byContent {
					files = append(files, &scanned{err: fmt.Errorf("%w: commit %s has a Runfile at the unsafe path %q", core.ErrInvalid, ci.Hash, ch.Path)})
				}
				continue
			}
			data, blob, err := g.ReadFile(ctx, ci.Hash, ch.Path)
			if err != nil {
				return nil, err
			}
			f := &scanned{commit: ci, path: ch.Path, how: how, data: data, blob: blob}
			files = append(files, f)
			select {
			case parse <- f:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
	}
	if sel.known.err != nil {
		return nil, sel.known.err
	}
	return files, nil
}

// parseOne parses a read file: one selected by name must be a valid
// Runfile (err otherwise), one selected by content merely may be one (rf
// stays nil otherwise).
func parseOne(f *scanned) {
	if f.how == byContent {
		f.rf, _ = looksLikeRunfile(f.path, f.data)
		return
	}
	rf, err := runfile.Parse(f.path, f.data)
	if err != nil {
		f.err = fmt.Errorf("commit %s has an invalid Runfile %s:\n%w", f.commit.Hash, f.path, err)
		return
	}
	f.rf = rf
}

// cleanRepoPath refuses what git itself would refuse in a tree, should a
// hostile remote send it: empty, ".", ".." or ".git" components, control
// characters.
func cleanRepoPath(p string) bool {
	if p == "" || path.Clean(p) != p || strings.HasPrefix(p, "/") {
		return false
	}
	for _, part := range strings.Split(p, "/") {
		if part == "." || part == ".." || strings.EqualFold(part, ".git") {
			return false
		}
	}
	return !strings.ContainsFunc(p, func(r rune) bool { return r < 0x20 || r == 0x7f })
}

// openRemote restores a repository that can talk to remotes.
func (c *Consumer) openRemote(ctx context.Context, name string, tarball []byte) (core.GitRepo, error) {
	g, err := c.Git.OpenRepo(ctx, c.TmpDir, tarball)
	if err != nil {
		return nil, fmt.Errorf("open repo %q: %w", name, err)
	}
	return g, nil
}

func (c *Consumer) logger() *slog.Logger {
	if c.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return c.Log
}

// selector decides which files of a fetched commit are Runfiles (pick).
// A glob without "/" matches the file's base name in any directory
// ("*.Runfile"); a glob with "/" matches the whole path
// ("analysis/*/Runfile"), as path.Match does.
type selector struct {
	globs []string
	known *knownPaths
	// content recognises Runfiles by their bytes (looksLikeRunfile). It is
	// on with the default globs only: explicit --path globs say which
	// files are Runfiles.
	content bool
}

// how says why a file was selected: a trailer or glob selection must
// be a valid Runfile, a content match merely may be one.
type how int

const (
	notRunfile how = iota
	byName
	byContent
)

func newSelector(globs []string) (selector, error) {
	content := len(globs) == 0
	if content {
		globs = DefaultRunfileGlobs
	}
	for _, g := range globs {
		if _, err := path.Match(g, ""); err != nil || g == "" || strings.HasPrefix(g, "/") {
			return selector{}, fmt.Errorf("%w: --path %q is not a glob of repository paths like *.Runfile or analysis/*/Runfile", core.ErrInvalid, g)
		}
	}
	return selector{globs: globs, known: &knownPaths{}, content: content}, nil
}

// knownPaths are the paths a repository already indexes. Only a file that
// comes without a trailer and matches no glob needs them, so they are read
// (load) the first time such a file is met, not on every pull.
type knownPaths struct {
	load  func() ([]core.Commit, error)
	paths map[string]bool
	err   error // from load; changedRunfiles returns it
}

func (k *knownPaths) has(p string) bool {
	if k.load != nil {
		rows, err := k.load()
		k.load, k.err = nil, err
		k.add(rows)
	}
	return k.paths[p]
}

func (k *knownPaths) add(rows []core.Commit) {
	if k.paths == nil {
		k.paths = map[string]bool{}
	}
	for _, r := range rows {
		k.paths[r.Path] = true
	}
}

// pick decides for one changed file. A commit with RunfileTrailer lines
// (trailer non-nil) has exactly the paths they name indexed. Otherwise a
// file is a Runfile when the repository already indexes its path or it
// matches a glob, and may be one by content.
func (s selector) pick(p string, trailer map[string]bool) how {
	switch {
	case trailer != nil:
		if trailer[strings.TrimSpace(p)] {
			return byName
		}
		return notRunfile
	case s.match(p):
		return byName
	case s.content:
		return byContent
	}
	return notRunfile
}

func (s selector) match(p string) bool {
	for _, g := range s.globs {
		subject := p
		if !strings.Contains(g, "/") {
			subject = path.Base(p)
		}
		if ok, _ := path.Match(g, subject); ok {
			return true
		}
	}
	return s.known.has(p)
}
