package zeoproxy

// resolveLater is filled in with the zrpc client.
func (p *Proxy) resolveLater(l *listener, storageName, storage string, b Begin) {}
