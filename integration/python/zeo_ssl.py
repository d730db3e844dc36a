"""ssl contexts for ZEO ClientStorage, as zope.conf's <clientstorage> <ssl> makes them.

add_arguments(parser) adds --ssl-ca, --ssl-cert, --ssl-key and
--ssl-server-hostname; options(args) returns the ClientStorage keyword
arguments (ssl, ssl_server_hostname), empty without --ssl-ca.
"""
import ssl


def add_arguments(p):
    p.add_argument("--ssl-ca", default=None,
                   help="talk TLS to the server, whose certificate this CA file signs (<ssl> authenticate)")
    p.add_argument("--ssl-cert", default=None, help="client certificate (<ssl> certificate)")
    p.add_argument("--ssl-key", default=None, help="its key (<ssl> key)")
    p.add_argument("--ssl-server-hostname", default=None,
                   help="name the server's certificate must hold (<ssl> server-hostname; default the address's host)")


def options(args):
    if not args.ssl_ca:
        return {}
    # What ZEO.zconfig.ssl_config builds for a client.
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=args.ssl_ca)
    if args.ssl_cert:
        ctx.load_cert_chain(args.ssl_cert, args.ssl_key)
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.verify_flags |= ssl.VERIFY_X509_STRICT
    return {"ssl": ctx, "ssl_server_hostname": args.ssl_server_hostname}
