package config

import (
	"fmt"
	"math"
	"math/big"
	"net/netip"
	"path/filepath"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
)

// The value decoders: each turns one attribute as written into its typed
// value, or reports, at the value, what is wrong with it. None knows the
// attribute's name but from the attribute itself.

// str decodes a string attribute; it reports false (and a diagnostic) when
// the value is not a string.
func (d *decoder) str(attr *hcl.Attribute, dst *string) bool {
	if attr == nil {
		return false
	}
	v, ok := d.stringValue(attr)
	if !ok {
		d.errorf(attr.Expr.Range(), "Invalid value", "%s must be a string in double quotes", attr.Name)
		return false
	}
	*dst = v
	return true
}

// path decodes a file or directory path, relative to the configuration
// file's directory, and keeps it for CheckPaths with what it needs to
// exist.
func (d *decoder) path(attr *hcl.Attribute, dst *string, need pathNeed) {
	var s string
	if !d.str(attr, &s) {
		return
	}
	if s == "" {
		d.errorf(attr.Expr.Range(), "Empty path", "%s is empty; remove it instead", attr.Name)
		return
	}
	if !filepath.IsAbs(s) {
		s = filepath.Join(d.base, s)
	}
	*dst = s
	d.paths = append(d.paths, pathRef{name: attr.Name, value: s, need: need, rng: attr.Expr.Range()})
}

func (d *decoder) boolean(attr *hcl.Attribute, dst *bool) {
	if attr == nil {
		return
	}
	val, diags := attr.Expr.Value(nil)
	if diags.HasErrors() || val.IsNull() || !val.IsKnown() || val.Type() != cty.Bool {
		d.errorf(attr.Expr.Range(), "Invalid value", "%s must be true or false (without quotes)", attr.Name)
		return
	}
	*dst = val.True()
}

func (d *decoder) count(attr *hcl.Attribute, dst *int) {
	if attr == nil {
		return
	}
	val, diags := attr.Expr.Value(nil)
	if diags.HasErrors() || val.IsNull() || !val.IsKnown() || val.Type() != cty.Number {
		d.errorf(attr.Expr.Range(), "Invalid number", "%s must be a whole number (without quotes); 0 means no limit", attr.Name)
		return
	}
	n, acc := val.AsBigFloat().Int64()
	if acc != big.Exact || n < 0 || n > math.MaxInt32 {
		d.errorf(attr.Expr.Range(), "Invalid number", "%s = %s; use 0 for no limit or a positive whole number", attr.Name, val.AsBigFloat().Text('g', -1))
		return
	}
	*dst = int(n)
}

func (d *decoder) duration(attr *hcl.Attribute, dst *time.Duration, minimum time.Duration) {
	if attr == nil {
		return
	}
	s, ok := d.stringValue(attr)
	if !ok {
		d.errorf(attr.Expr.Range(), "Invalid duration",
			`%s must be a string with a unit, such as "30s", "5m" or "1h30m"`, attr.Name)
		return
	}
	v, err := time.ParseDuration(s)
	switch {
	case err != nil:
		d.errorf(attr.Expr.Range(), "Invalid duration",
			`%s = %q is not a duration; write a number with a unit, such as "30s", "5m" or "1h30m"`, attr.Name, s)
	case v < minimum:
		d.errorf(attr.Expr.Range(), "Invalid duration", "%s = %q; it must be at least %s", attr.Name, s, minimum)
	default:
		*dst = v
	}
}

// stringValue returns the value of attr when it is a literal string (no
// conversion from numbers or bools: "30" for a duration is a mistake).
func (d *decoder) stringValue(attr *hcl.Attribute) (string, bool) {
	val, diags := attr.Expr.Value(nil)
	if diags.HasErrors() {
		return "", false
	}
	if val.IsNull() || !val.IsKnown() || val.Type() != cty.String {
		return "", false
	}
	return val.AsString(), true
}

// address decodes a listen/dial address. Port 0 (a free port) is allowed only
// where nobody needs to know the port in advance (classic, admin: tests).
func (d *decoder) address(attr *hcl.Attribute, dst *Address, port0 bool) {
	var s string
	if !d.str(attr, &s) {
		return
	}
	a, err := ParseAddress(s)
	if err == nil && a.Network == "tcp" && a.Port == 0 && !port0 {
		err = fmt.Errorf("%q: port 0 is not allowed here, clients must know the port", s)
	}
	if err != nil {
		d.errorf(attr.Expr.Range(), "Invalid address", "%s: %v", attr.Name, err)
		return
	}
	*dst = a
	d.attrs[dst] = attr
}

// tcpAddress decodes the listen address of the classic or admin endpoint:
// TCP only (patched Zopes and HTTP clients dial host and port), port 0 allowed
// (a free port, for tests).
func (d *decoder) tcpAddress(attr *hcl.Attribute, dst *Address) {
	var a Address
	d.address(attr, &a, true)
	if a.IsZero() {
		return
	}
	if a.IsUnix() {
		d.errorf(attr.Expr.Range(), "Invalid address", "%s: %s: this endpoint is TCP only, use host:port", attr.Name, a)
		return
	}
	*dst = a
	d.attrs[dst] = attr
}

// listMsg is the summary and detail of a diagnostic.
type listMsg struct{ summary, detail string }

// stringList decodes a list of strings, calling each for every string; a
// value that is not a list is reported with notList, an entry that is not
// a string with notString.
func (d *decoder) stringList(attr *hcl.Attribute, notList, notString listMsg, each func(hcl.Expression, string)) {
	exprs, diags := hcl.ExprList(attr.Expr)
	if diags.HasErrors() {
		d.errorf(attr.Expr.Range(), notList.summary, "%s", notList.detail)
		return
	}
	for _, e := range exprs {
		v, diags := e.Value(nil)
		if diags.HasErrors() || v.IsNull() || !v.IsKnown() || v.Type() != cty.String {
			d.errorf(e.Range(), notString.summary, "%s", notString.detail)
			continue
		}
		each(e, v.AsString())
	}
}

// parsePrefix accepts a CIDR prefix or a bare IP address (one host).
func parsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("%q is not a CIDR prefix such as \"10.0.0.0/8\"", s)
		}
		return p.Masked(), nil
	}
	ip, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q is not an IP address or a CIDR prefix such as \"10.0.0.0/8\"", s)
	}
	ip = ip.Unmap()
	return netip.PrefixFrom(ip, ip.BitLen()), nil
}
