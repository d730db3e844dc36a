package tracker

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/tidstorage/tidstorage/tracker/statusfile"
)

// discardFile is a status file that takes every line at once.
type discardFile struct{}

func (discardFile) Write(p []byte) (int, error) { return len(p), nil }
func (discardFile) Sync() error                 { return nil }

// BenchmarkServiceMixStatusFile: BenchmarkServiceMix with a status file
// behind the Service (burst period 0: the writer's goroutine is woken for
// every publication), to show what feeding its mailbox costs the relay's
// path.
func BenchmarkServiceMixStatusFile(b *testing.B) {
	sf := statusfile.NewWriter(discardFile{}, statusfile.Options{FullDumpPeriod: time.Minute})
	defer sf.Close()
	benchServiceMix(b, NewService(ServiceConfig{StatusFile: sf}))
}

// BenchmarkServiceMixJournal: the same mix with every input journaled (one
// write(2) each, no fsync): the journal's own cost per event.
func BenchmarkServiceMixJournal(b *testing.B) {
	s := NewService(ServiceConfig{})
	if _, err := s.OpenJournal(filepath.Join(b.TempDir(), "journal"), JournalOptions{}); err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	benchServiceMix(b, s)
}
