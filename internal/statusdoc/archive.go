package statusdoc

import "time"

// ArchiveDoc is the continuous archive's state (docs/backup.md, "Continuous
// archive"); absent from /status when no archive runs.
type ArchiveDoc struct {
	Store string `json:"store"`
	// LastShipment is when the last point was made restorable (zero: none
	// yet in this run), LastPoint that point's time.
	LastShipment time.Time `json:"last_shipment"`
	LastPoint    time.Time `json:"last_point"`
	// LagSeconds: the loss window (now minus the newest restorable point
	// while the published point has moved past it); LagBytes: committed
	// Data.fs bytes not shipped yet.
	LagSeconds   float64 `json:"lag_seconds"`
	LagBytes     int64   `json:"lag_bytes"`
	Shipments    uint64  `json:"shipments"`
	BytesShipped int64   `json:"bytes_shipped"`
	Errors       uint64  `json:"errors"`
	Failing      bool    `json:"failing"`
	LastError    string  `json:"last_error,omitempty"`
	// State is "starting" (the store not reached yet), "running" or why
	// it does not run.
	State string `json:"state"`
}
