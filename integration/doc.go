// Package integration holds tidstorage's end-to-end tests: real ZEO servers
// (runzeo), real ZODB clients (Python scripts in python/), and the daemon
// (proxy + tracker + status file + endpoints) in between.
package integration
