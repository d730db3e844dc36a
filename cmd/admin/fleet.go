package admin

import (
	"net/http"

	"github.com/tidstorage/tidstorage/internal/statusdoc"
)

// BuildFleet returns the /fleet document; ok is false in the all-in-one
// role (neither source set).
func BuildFleet(src *Sources) (doc statusdoc.FleetDoc, ok bool) {
	switch {
	case src.FleetSidecars != nil:
		return statusdoc.FleetDoc{Role: "tracker", Sidecars: src.FleetSidecars()}, true
	case src.FleetLink != nil:
		st := src.FleetLink()
		return statusdoc.FleetDoc{Role: "sidecar", Link: &st}, true
	}
	return statusdoc.FleetDoc{}, false
}

// fleet serves the fleet link's figures as JSON; 404 in the all-in-one
// role.
func (h *handler) fleet(w http.ResponseWriter, r *http.Request) {
	doc, ok := BuildFleet(h.src)
	if !ok {
		http.Error(w, "not a fleet tracker or sidecar", http.StatusNotFound)
		return
	}
	if !authorized(r) {
		doc.Redact()
	}
	writeJSON(w, http.StatusOK, doc)
}
