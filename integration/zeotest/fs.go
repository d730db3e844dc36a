package zeotest

import (
	"encoding/json"
	"testing"
)

// FSWritten is what integration/python/backup_fs.py write reports: the TIDs
// it committed to a FileStorage with real ZODB (no ZEO), the oids it
// created, and the counter values.
type FSWritten struct {
	TIDs   []string `json:"tids"`
	New    []string `json:"new"`
	Values []int    `json:"values"`
}

// FSRead is what backup_fs.py read reports of a Data.fs opened by ZODB.
type FSRead struct {
	Last    string   `json:"last"`
	TIDs    []string `json:"tids"`
	Value   *int     `json:"value"`
	Blob    *string  `json:"blob"`
	Objects int      `json:"objects"`
}

// WriteFS runs `backup_fs.py write ARGS...`.
func WriteFS(t testing.TB, args ...string) FSWritten {
	t.Helper()
	var w FSWritten
	if err := json.Unmarshal(Python(t, "backup_fs.py", append([]string{"write"}, args...)...), &w); err != nil {
		t.Fatalf("zeotest: backup_fs.py write: %v", err)
	}
	return w
}

// ReadFS runs `backup_fs.py read ARGS...`.
func ReadFS(t testing.TB, args ...string) FSRead {
	t.Helper()
	var r FSRead
	if err := json.Unmarshal(Python(t, "backup_fs.py", append([]string{"read"}, args...)...), &r); err != nil {
		t.Fatalf("zeotest: backup_fs.py read: %v", err)
	}
	return r
}
