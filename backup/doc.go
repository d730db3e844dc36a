// Package backup backs up, restores and cuts the FileStorage files of every
// configured storage at one coherent point (storage id → TID), in
// repositories that repozo can restore.
//
// A backup set is one run over all storages: each storage's Data.fs bytes up
// to the end of its last committed transaction with TID <= the point's
// (package fsdata finds that offset) are written to its repository as a
// repozo full (.fs) or incremental (.deltafs) file with a line in the full
// backup's .dat ledger, all named by the set's stamp; blob files of
// revisions up to that TID go to the repository's blobs/ pool; and one
// manifest (<stamp>.tidstorage.json, the same in every repository of the
// set) records the point, the files, their sizes and checksums. See
// docs/backup.md.
//
// Nothing is destroyed: a cut keeps the bytes it removes and the stale index
// it moves aside, a restore refuses to overwrite files unless forced.
package backup
