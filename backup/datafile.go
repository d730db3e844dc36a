package backup

import (
	"compress/gzip"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"os"
	"strings"

	"github.com/tidstorage/tidstorage/internal/atomicfile"
)

// A data file of a repository holds a byte range of a Data.fs: a full
// backup (<stamp>.fs) or an incremental (<stamp>.deltafs), gzipped when its
// name ends in z (repozo -z: .fsz, .deltafsz).

// openData opens data file name for reading its Data.fs bytes (gunzipped
// when named *z).
func (r *repository) openData(name string) (io.ReadCloser, error) {
	path := r.path(name)
	in, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	if !strings.HasSuffix(name, "z") {
		return in, nil
	}
	zr, err := gzip.NewReader(in)
	if err != nil {
		in.Close()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return gzipFile{zr, in}, nil
}

// gzipFile closes the gzip stream and the file under it.
type gzipFile struct {
	*gzip.Reader
	f *os.File
}

func (g gzipFile) Close() error {
	g.Reader.Close()
	return g.f.Close()
}

// readData copies data file fe's Data.fs bytes to out (with pr, if not
// nil, counting them), checking its size and checksums. Restoring (!both),
// one hash: sha256 when the manifest has it (the ledger's md5 was compared
// with the manifest's by checkLedger, both computed from the same bytes at
// backup time), else the md5: md5 is the slowest pass over the data.
// Checking a chain (verify, before an incremental), both, as the ledger
// and the manifest say.
func (r *repository) readData(out io.Writer, fe FileEntry, pr *progress, both bool) error {
	path := r.path(fe.Name)
	in, err := r.openData(fe.Name)
	if err != nil {
		return err
	}
	defer in.Close()
	var hm, hs hash.Hash
	ws := []io.Writer{out}
	if both || fe.SHA256 == "" {
		hm = md5.New()
		ws = append(ws, hm)
	}
	if fe.SHA256 != "" {
		hs = sha256.New()
		ws = append(ws, hs)
	}
	if pr != nil {
		ws = append(ws, pr)
	}
	n, err := copyFanout(in, ws...)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if want := fe.End - fe.Start; n != want {
		return fmt.Errorf("%s: %d bytes, the ledger says %d (%d-%d)", path, n, want, fe.Start, fe.End)
	}
	if hm != nil {
		if got := hex.EncodeToString(hm.Sum(nil)); got != fe.MD5 {
			return fmt.Errorf("%s: md5 %s, the ledger says %s", path, got, fe.MD5)
		}
	}
	if hs != nil {
		if got := hex.EncodeToString(hs.Sum(nil)); got != fe.SHA256 {
			return fmt.Errorf("%s: sha256 %s, the manifest says %s", path, got, fe.SHA256)
		}
	}
	return nil
}

// checkData re-reads data file fe and checks its size and both checksums.
func (r *repository) checkData(fe FileEntry) error {
	return r.readData(io.Discard, fe, nil, true)
}

// quickCheckData checks data file fe's presence and, uncompressed, its
// size, reading nothing: "" or what is wrong.
func (r *repository) quickCheckData(fe FileEntry) string {
	path := r.path(fe.Name)
	st, err := os.Stat(path)
	switch {
	case err != nil:
		return err.Error()
	case !strings.HasSuffix(fe.Name, "z") && st.Size() != fe.End-fe.Start:
		return fmt.Sprintf("%s: %d bytes, the ledger says %d", path, st.Size(), fe.End-fe.Start)
	}
	return ""
}

// writtenData is a data file written to the repository.
type writtenData struct {
	name        string
	n           int64 // Data.fs bytes copied
	md5, sha256 string
}

// writeData writes src to the new data file name through a temporary file
// (gzipped if the name ends in z), returning the md5 and sha256 of the
// bytes read and their count; pr counts them.
func (r *repository) writeData(name string, src io.Reader, pr *progress) (*writtenData, error) {
	hm, hs := md5.New(), sha256.New()
	w := &writtenData{name: name}
	err := atomicfile.WriteNew(r.path(name), 0o644, func(out io.Writer) error {
		if !strings.HasSuffix(name, "z") {
			var err error
			w.n, err = copyFanout(src, out, hm, hs, pr)
			return err
		}
		zw := gzip.NewWriter(out)
		var err error
		if w.n, err = copyFanout(src, zw, hm, hs, pr); err != nil {
			return err
		}
		return zw.Close()
	})
	if err != nil {
		return nil, err
	}
	w.md5, w.sha256 = hex.EncodeToString(hm.Sum(nil)), hex.EncodeToString(hs.Sum(nil))
	return w, nil
}

// removeData takes back a data file the ledger does not list (repozo -R
// would still join it).
func (r *repository) removeData(name string) { os.Remove(r.path(name)) }
