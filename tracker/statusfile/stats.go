package statusfile

import "time"

// Stats are the status file's counters: the one type shown by /status,
// `tidstorage status` and the metrics.
type Stats struct {
	Path  string
	Lines uint64 // lines written and fsynced by this run
	// FileLines: the lines the file holds now (those it held when opened,
	// plus those written since; a new epoch's file counts from zero).
	FileLines uint64
	Bytes     uint64    // their bytes
	Errors    uint64    // failed writes (each cut back and retried)
	LastWrite time.Time // zero before the first line
	LastError string    // the last failure's message ("" if none)
	// Broken, when not "", is why appending stopped until restart (a torn
	// line could not be cut back).
	Broken string
	// Epochs started by this run (a new file, the old one kept aside: see
	// epoch.go), and where the last old file went.
	Epochs    uint64
	LastAside string
}
