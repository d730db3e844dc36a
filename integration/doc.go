// Package integration holds tidstorage's end-to-end tests: real ZEO servers
// (runzeo), real ZODB clients (Python scripts in python/), and the daemon
// (proxy + tracker + status file + endpoints) in between, in-process
// (harness_test.go) or as a `tidstorage serve` process that tests SIGKILL and
// restart on the same files (process_test.go).
package integration
