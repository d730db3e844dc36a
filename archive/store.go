package archive

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strings"
	"time"
)

// ErrNotExist is returned by Get for a missing object.
var ErrNotExist = errors.New("object does not exist")

// ErrPrecondition is returned by PutIfAbsent when the object exists.
var ErrPrecondition = errors.New("object already exists")

// Object is one listed object.
type Object struct {
	Key      string // relative to the store's prefix, "/"-separated
	Size     int64
	Modified time.Time
}

// Store is the little an archive needs from an object store: whole objects
// put, got, listed by prefix and deleted. Keys are relative to the store's
// root (a bucket and prefix, or a directory) and use "/".
type Store interface {
	// Put writes the object whole: readers see the old object (or none) or
	// the new one, never a part.
	Put(ctx context.Context, key string, r io.Reader, size int64) error
	// PutIfAbsent is Put that fails with ErrPrecondition if the key exists.
	PutIfAbsent(ctx context.Context, key string, data []byte) error
	Get(ctx context.Context, key string) (io.ReadCloser, error)
	// List returns every object whose key starts with prefix, sorted by key.
	List(ctx context.Context, prefix string) ([]Object, error)
	// Delete removes the object; a missing object is not an error.
	Delete(ctx context.Context, key string) error
	// String names the store for messages (never with credentials).
	String() string
}

// StoreOptions are the settings of the configuration's archive block that
// reach the store.
type StoreOptions struct {
	Endpoint  string // S3-compatible server URL; "" = AWS
	Region    string
	PathStyle bool
}

// OpenStore opens the store an archive url names: "file:///dir" or
// "s3://bucket/prefix".
func OpenStore(rawURL string, o StoreOptions) (Store, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("archive url %q: %w", rawURL, err)
	}
	switch u.Scheme {
	case "file":
		return NewFileStore(u.Path)
	case "s3":
		return NewS3Store(u.Host, strings.Trim(u.Path, "/"), o)
	}
	return nil, fmt.Errorf("archive url %q: use s3://BUCKET/PREFIX or file:///DIRECTORY", rawURL)
}

// getBytes reads a whole (small) object.
func getBytes(ctx context.Context, s Store, key string) ([]byte, error) {
	rc, err := s.Get(ctx, key)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		return nil, fmt.Errorf("%s: read %s: %w", s, key, err)
	}
	return b, nil
}
