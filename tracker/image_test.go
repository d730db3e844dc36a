package tracker

import (
	"path/filepath"
	"reflect"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/tidstorage/tidstorage/tracker/input"
)

// Every field of every struct the image walks is either written to it or
// listed here as not state (scratch, free lists, derived): a field added
// later without its place in the image fails this test.
func TestImageCoversEveryField(t *testing.T) {
	covered := map[reflect.Type][]string{
		reflect.TypeOf(Machine{}): {"seq", "now", "nextPin", "bootstrapped", "bootRequested", "bootRestored", "bootArmed", "bootSeq",
			"clean", "lostReports", "ctr", "sources", "pins", "st", "parts", "keyed", "classic", "cHead",
			// derived from the configuration or the tables, or scratch
			"cfg", "timeout", "stIdx", "sorted", "missing", "freeGroups", "freeDone", "freeParts", "freeLS",
			"freeClassic", "recs", "remote", "src", "awaited", "scratch", "doneScratch", "u64a", "u64b", "oneIdx"},
		reflect.TypeOf(storage{}): {"name", "published", "transient", "hasPublished", "known", "expected", "group", "commits", "blind",
			"blindPin", "waiters", "pubAt", "lagWarned", "watched", "warnOnly", "hist", "floor", "acc", "unacc",
			"unaccPin", "unaccTotal", "awaiting", "settleAt", "settling", "blindSettle", "fresh",
			"cand", "best", "bestOK"}, // scratch of advance
		reflect.TypeOf(part{}): {"id", "st", "ls", "state", "began", "votedAt", "finAt", "endedAt", "tid", "finCap", "excused",
			"finFailed", "lostConn", "orphan", "ambiguous", "damaged", "ncand", "cand", "src", "gapped"},
		reflect.TypeOf(linkSet{}):     {"key", "info", "parts", "inflight", "accepting", "lastFailed", "began", "ambiguous", "caps"},
		reflect.TypeOf(pin{}):         {"id", "seq", "kind", "since", "reason", "sts", "cs", "waitLeft", "parts", "key", "txn", "released", "upto"},
		reflect.TypeOf(ctxn{}):        {"id", "sts", "caps", "began", "beganSeq", "prev", "next", "pin"},
		reflect.TypeOf(group{}):       {"members", "busy", "lsets", "classic", "pins", "done"},
		reflect.TypeOf(doneTxn{}):     {"cs"},
		reflect.TypeOf(doneCommit{}):  {"st", "lo", "hi"},
		reflect.TypeOf(unaccounted{}): {"tid", "seen", "reported", "blind", "meta"},
		reflect.TypeOf(awaiting{}):    {"tid", "pt", "pn"},
		reflect.TypeOf(Counters{}):    nil, // counterFields, checked below
	}
	for typ, names := range covered {
		if typ == reflect.TypeOf(Counters{}) {
			continue
		}
		for i := 0; i < typ.NumField(); i++ {
			require.Contains(t, names, typ.Field(i).Name, "%s.%s has no place in the image (image.go)", typ.Name(), typ.Field(i).Name)
		}
	}
	var c Counters
	require.Len(t, counterFields(&c), reflect.TypeOf(c).NumField(), "every counter is in the image")
}

// busyMachine runs the simulation's world for a while, without letting it
// quiesce: transactions in flight, pins, held commits.
func busyMachine(t *testing.T, seed uint64, steps int) *world {
	w := newWorldOpts(t, seed, steps*10, false)
	for w.steps < steps && !w.failed {
		w.step()
	}
	require.False(t, w.failed)
	return w
}

// An image restores the same state, and its own image is the same bytes.
func TestImageRoundTrip(t *testing.T) {
	for seed := uint64(1); seed <= 4; seed++ {
		w := busyMachine(t, seed, 6000)
		img := w.m.AppendImage(nil)
		m := New(w.cfg)
		require.NoError(t, m.restoreImage(img))
		require.Equal(t, w.m.Status(), m.Status())
		require.Equal(t, img, m.AppendImage(nil))
		_, got, err := input.Decode(input.Append(nil, 1, input.Image{Bytes: img}))
		require.NoError(t, err)
		require.Equal(t, input.Image{Bytes: img}, got)
	}
}

// A damaged image (cut anywhere, or a flipped byte) fails to restore or
// restores something, and never panics; a Machine it fails on is left as
// it was.
func TestImageDamageDoesNotPanic(t *testing.T) {
	w := busyMachine(t, 3, 4000)
	img := w.m.AppendImage(nil)
	for n := 0; n < len(img); n += 1 + n/64 {
		m := New(w.cfg)
		before := m.Status()
		require.Error(t, m.restoreImage(img[:n]), "cut at %d of %d", n, len(img))
		require.Equal(t, before, m.Status())
	}
	for k := 0; k < len(img); k += 1 + k/128 {
		bad := slices.Clone(img)
		bad[k] ^= 0x5a
		func() {
			defer func() {
				if r := recover(); r != nil {
					t.Fatalf("byte %d flipped: panic %v", k, r)
				}
			}()
			m := New(w.cfg)
			_ = m.restoreImage(bad)
			_ = m.Status()
		}()
	}
}

// BenchmarkImage: the image of a busy Machine (what a rotation encodes
// under the tracker's lock), and its restore.
func BenchmarkImage(b *testing.B) {
	w := busyMachine(&testing.T{}, 2, 20000)
	img := w.m.AppendImage(nil)
	p, c := w.m.InFlight()
	b.Logf("image of %d bytes, %d participations and classic transactions in flight", len(img), p+c)
	b.Run("append", func(b *testing.B) {
		buf := make([]byte, 0, len(img))
		for b.Loop() {
			buf = w.m.AppendImage(buf[:0])
		}
	})
	b.Run("restore", func(b *testing.B) {
		for b.Loop() {
			m := New(w.cfg)
			if err := m.restoreImage(img); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkJournalRotateBusy: a rotation of the journal (on the test's
// disk) from the image of a busy tracker, as Tick does it under the lock:
// the image, a temporary file, two fsyncs, a rename.
func BenchmarkJournalRotateBusy(b *testing.B) {
	w := busyMachine(&testing.T{}, 2, 20000)
	s := NewService(ServiceConfig{Config: w.cfg})
	s.m = w.m
	if _, err := s.OpenJournal(filepath.Join(b.TempDir(), "journal"), JournalOptions{}); err != nil {
		b.Fatal(err)
	}
	defer s.CloseJournal()
	for b.Loop() {
		s.mu.Lock()
		err := s.rotateLocked(1)
		s.mu.Unlock()
		if err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(s.JournalStats().Size), "journal-bytes")
}
