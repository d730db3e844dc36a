package admin

import "net/http"

// fleet serves the fleet link's figures (Sources.Fleet) as JSON; 404 in
// the all-in-one role.
func (h *handler) fleet(w http.ResponseWriter, r *http.Request) {
	if h.src.Fleet == nil {
		http.Error(w, "not a fleet tracker or sidecar", http.StatusNotFound)
		return
	}
	writeJSON(w, http.StatusOK, h.src.Fleet())
}
