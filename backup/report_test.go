//go:build report

package backup

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tidstorage/tidstorage/internal/txn"
)

// TestReportRestoreSteps times what a restore does, step by step, on the
// newest set of the repository RESTORE_REPO (scripts/bench-backup.sh makes
// one from a 1 GiB Data.fs): what repozo -R also does (read the chain and
// write it, hashing once), and what it does not (fsync, the check scan with
// the index it builds, the index file). In a real restore the check scan
// follows the join through the file being written; here each step runs
// alone, so that its cost shows. 3 interleaved rounds, medians.
//
//	RESTORE_REPO=/path/to/repo go test -tags report -run TestReportRestoreSteps -v ./backup/
func TestReportRestoreSteps(t *testing.T) {
	repo := os.Getenv("RESTORE_REPO")
	if repo == "" {
		t.Skip("RESTORE_REPO not set")
	}
	r := openRepository(repo)
	m, err := FindSet([]string{repo}, "")
	require.NoError(t, err)
	e := m.Storages[0]
	kept, err := txn.ParseTID(e.KeptTID, txn.FormatHex)
	require.NoError(t, err)
	dir := t.TempDir()
	out := filepath.Join(dir, "Data.fs")
	opts := &RestoreOptions{}

	type step struct {
		name string
		run  func()
	}
	steps := []step{
		{"copy the chain, no hash (floor)", func() {
			f, err := os.Create(out)
			require.NoError(t, err)
			defer f.Close()
			for _, fe := range e.Files {
				in, err := os.Open(filepath.Join(repo, fe.Name))
				require.NoError(t, err)
				_, err = copyFanout(in, f)
				in.Close()
				require.NoError(t, err)
			}
		}},
		{"join: read, sha256, write (what repozo -R does, with md5)", func() {
			f, err := os.Create(out)
			require.NoError(t, err)
			defer f.Close()
			for _, fe := range e.Files {
				require.NoError(t, r.readData(f, fe, nil, false))
			}
		}},
		{"fsync of the joined file", func() {
			f, err := os.OpenFile(out, os.O_RDWR, 0)
			require.NoError(t, err)
			require.NoError(t, f.Sync())
			f.Close()
		}},
		{"check scan with the index built (re-read)", func() {
			f, err := os.Open(out)
			require.NoError(t, err)
			defer f.Close()
			_, _, err = checkRebuilt(f, out, e, kept)
			require.NoError(t, err)
		}},
		{"index file written", func() {
			f, err := os.Open(out)
			require.NoError(t, err)
			c, ix, err := checkRebuilt(f, out, e, kept)
			f.Close()
			require.NoError(t, err)
			start, cpu := time.Now(), cpuTime()
			require.NoError(t, writeIndex(out, c.Magic, ix, e.Size))
			indexOnly = [2]time.Duration{time.Since(start), cpuTime() - cpu}
		}},
		{"join with the check following it, and fsync (restore but the index)", func() {
			require.NoError(t, os.RemoveAll(filepath.Join(dir, "r")))
			_, _, err := buildDataFS(r, e, filepath.Join(dir, "r.part"), kept, opts)
			require.NoError(t, err)
		}},
	}
	wall := map[string][]time.Duration{}
	cpu := map[string][]time.Duration{}
	for range 3 {
		for _, s := range steps {
			w0, c0 := time.Now(), cpuTime()
			s.run()
			w, c := time.Since(w0), cpuTime()-c0
			if s.name == "index file written" { // the scan it needs is not its cost
				w, c = indexOnly[0], indexOnly[1]
			}
			wall[s.name] = append(wall[s.name], w)
			cpu[s.name] = append(cpu[s.name], c)
		}
	}
	fmt.Printf("restore steps, %d MiB Data.fs, 3 interleaved rounds, median wall / CPU (user+system, all threads):\n", e.Size>>20)
	for _, s := range steps {
		fmt.Printf("  %-58s %6.2f s  %6.2f s\n", s.name, med(wall[s.name]).Seconds(), med(cpu[s.name]).Seconds())
	}
}

var indexOnly [2]time.Duration

func med(d []time.Duration) time.Duration {
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
