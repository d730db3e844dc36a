package admintest

import (
	"time"

	"github.com/tidstorage/tidstorage/fleet"
)

// Sidecars is a fleet tracker's view of its sidecars at T0: zope1
// connected since T0-1h, its newest report observed at T0-2s; zope2 down
// since T0-90s after a restart and a declared gap.
func Sidecars() []fleet.SourceStats {
	return []fleet.SourceStats{
		{Source: "zope1", Peer: "10.0.0.11:40100", Identity: "CN=zope1", Incarnation: 11, Version: "v1",
			Connected: true, Since: T0.Add(-time.Hour), Connects: 1, Applied: 1800000000000000123, Reports: 5010,
			AppliedReports: 5000, LastReport: T0.Add(-2 * time.Second), LagSeconds: 0.004},
		{Source: "zope2", Peer: "10.0.0.12:40200", Identity: "CN=zope2", Incarnation: 22, Version: "v1",
			Since: T0.Add(-90 * time.Second), Connects: 3, Restarts: 1, Applied: 1800000000000000456, Reports: 700,
			AppliedReports: 650, LastReport: T0.Add(-95 * time.Second), Gaps: 2, LagSeconds: 1.5,
			LastError: "rpc error: code = Unavailable desc = transport is closing"},
	}
}

// Link is a sidecar's link at T0: down since T0-45s, 120 of 1000 reports
// pending, the oldest 44 s old.
func Link() fleet.LinkStats {
	return fleet.LinkStats{Source: "zope1", Tracker: "10.0.0.5:9010", Since: T0.Add(-45 * time.Second), Incarnation: 11,
		LastError: "Unavailable: connection refused", Connects: 4, Observed: 9000, Sent: 8950, Resent: 70,
		Acked: 1800000000000009000, AckedReports: 8880, LastSeq: 1800000000000009120, Pending: 120, Capacity: 1000,
		Gaps: 1, LagSeconds: 44, BufferFile: "/var/lib/tidstorage/sidecar.buffer", BufferSize: 65536}
}

// NoSidecars is a fleet tracker that no sidecar reached yet.
func NoSidecars() []fleet.SourceStats { return nil }

// LinkFull is a sidecar's link at T0: up since T0-5s, its send buffer 90 %
// full and its buffer file no longer written.
func LinkFull() fleet.LinkStats {
	l := Link()
	l.Connected, l.Since, l.Connects, l.LastError = true, T0.Add(-5*time.Second), 5, ""
	l.Pending, l.BufferError = 900, "write: no space left on device"
	return l
}

// SidecarsRefused is a fleet tracker at T0 whose zope1 holds its name
// against a second stream refused 10 s ago, and that waits for zope3 (heard
// from before its start 2 minutes ago, not back since).
func SidecarsRefused() []fleet.SourceStats {
	s := Sidecars()[:1]
	s[0].Refused, s[0].LastRefusedAt = 2, T0.Add(-10*time.Second)
	s[0].LastRefused = `10.0.0.13:40300: the name "zope1" is held by a live stream from 10.0.0.11:40100`
	return append(s, fleet.SourceStats{Source: "zope3", Expected: true, Since: T0.Add(-2 * time.Minute),
		LastError: "not reconnected since the tracker started"})
}

// LinkRefused is a sidecar's link at T0 that the tracker refuses.
func LinkRefused() fleet.LinkStats {
	l := Link()
	l.Refused = `the name "zope1" is held by a live stream from 10.0.0.11:40100`
	l.LastError = "AlreadyExists: " + l.Refused
	return l
}
