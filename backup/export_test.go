package backup

// Test-only exports: the repository's files and locks as the tests of
// package backup_test check them.

const (
	RepoLockName    = repoLockName
	ReadersLockName = readersLockName
)

type RepoLock = repoLock

// ReadManifest reads the manifest of set stamp in repo.
func ReadManifest(repo, stamp string) (*Manifest, error) {
	return openRepository(repo).manifest(stamp)
}

// Sets lists the stamps of the backup sets in repo, oldest first.
func Sets(repo string) ([]string, error) { return openRepository(repo).sets() }

// LockRepository takes repo's writer lock for command.
func LockRepository(repo, command string, logf func(string, ...any)) (*RepoLock, error) {
	return openRepository(repo).lock(command, logf)
}
