package admin

import "time"

// Certificate is one certificate file tidstorage loaded, for the
// tidstorage_certificate_expiry_timestamp_seconds metric: Kind is
// "certificate" (what this end presents) or "ca" (the earliest expiry of
// the CA file that verifies the other end); Label names what it belongs to
// ("fleet" for the fleet link).
type Certificate struct {
	Kind, Label string
	NotAfter    time.Time
}

var mCertExpiry = gauge("certificate_expiry_timestamp_seconds", "Unix time at which a certificate tidstorage loaded expires, by kind (certificate: the one it presents; ca: the earliest of the CA file that verifies the other end) and label (what it belongs to: fleet). Read again on SIGHUP.", "kind", "label")

func (e emitter) collectCertificates(certs []Certificate) {
	for _, c := range certs {
		if !c.NotAfter.IsZero() {
			e.emit(mCertExpiry, float64(c.NotAfter.Unix()), c.Kind, c.Label)
		}
	}
}
