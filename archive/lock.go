package archive

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"
)

// lease is the content of lock.json: two archivers never write one archive.
// The holder renews it at every shipment; one that expired, or that names a
// dead process of this host, is taken over (and the takeover logged).
type lease struct {
	Owner   string    `json:"owner"` // host/pid/start
	Host    string    `json:"host"`
	PID     int       `json:"pid"`
	Command string    `json:"command"`
	Started time.Time `json:"started"`
	Expires time.Time `json:"expires"`
}

func (l lease) String() string {
	return fmt.Sprintf("%s (pid %d on %s, %s, since %s, lease until %s)", l.Owner, l.PID, l.Host, l.Command,
		l.Started.UTC().Format(time.RFC3339), l.Expires.UTC().Format(time.RFC3339))
}

// ErrLocked is returned when another archiver holds the archive.
var ErrLocked = errors.New("another archiver holds this archive")

func newLease(command string, now time.Time, ttl time.Duration) lease {
	host, _ := os.Hostname()
	pid := os.Getpid()
	return lease{Owner: fmt.Sprintf("%s/%d/%d", host, pid, now.UnixNano()), Host: host, PID: pid, Command: command,
		Started: now, Expires: now.Add(ttl)}
}

func readLease(ctx context.Context, s Store) (*lease, error) {
	b, err := getBytes(ctx, s, lockKey)
	if err != nil {
		return nil, err
	}
	var l lease
	if err := json.Unmarshal(b, &l); err != nil {
		return nil, fmt.Errorf("%s: %s: %w", s, lockKey, err)
	}
	return &l, nil
}

// stale says why a lease may be taken over ("" if it may not).
func (l *lease) stale(now time.Time) string {
	if now.After(l.Expires) {
		return "its lease expired at " + l.Expires.UTC().Format(time.RFC3339)
	}
	if host, _ := os.Hostname(); l.Host == host && l.PID > 0 {
		if err := syscall.Kill(l.PID, 0); errors.Is(err, syscall.ESRCH) {
			return fmt.Sprintf("process %d of this host is gone", l.PID)
		}
	}
	return ""
}

// acquire takes the archive's lease for me. takeover receives the
// description of a stale lease taken over.
func acquire(ctx context.Context, s Store, me lease, takeover func(string)) error {
	b, _ := json.Marshal(me)
	for range 3 {
		err := s.PutIfAbsent(ctx, lockKey, b)
		if err == nil {
			return nil
		}
		if !errors.Is(err, ErrPrecondition) {
			return err
		}
		old, err := readLease(ctx, s)
		if errors.Is(err, ErrNotExist) {
			continue // released meanwhile
		}
		if err != nil {
			return err
		}
		why := old.stale(me.Started)
		if why == "" {
			return fmt.Errorf("%w: %s", ErrLocked, old)
		}
		takeover(fmt.Sprintf("%s: %s", old, why))
		if err := s.Delete(ctx, lockKey); err != nil {
			return err
		}
	}
	return fmt.Errorf("%s: could not take %s (it keeps changing)", s, lockKey)
}

// renew extends my lease, after checking nobody took it over.
func renew(ctx context.Context, s Store, me *lease, now time.Time, ttl time.Duration) error {
	cur, err := readLease(ctx, s)
	if err != nil && !errors.Is(err, ErrNotExist) {
		return err
	}
	if cur != nil && cur.Owner != me.Owner {
		return fmt.Errorf("%w: it was taken over by %s", ErrLocked, cur)
	}
	me.Expires = now.Add(ttl)
	b, _ := json.Marshal(me)
	if cur == nil {
		return s.PutIfAbsent(ctx, lockKey, b)
	}
	return s.Put(ctx, lockKey, bytesReader(b), int64(len(b)))
}

// release removes my lease if it is still mine.
func release(ctx context.Context, s Store, me *lease) error {
	cur, err := readLease(ctx, s)
	if err != nil || cur.Owner != me.Owner {
		return err
	}
	return s.Delete(ctx, lockKey)
}
