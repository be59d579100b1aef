#!/usr/bin/python3
"""A real SMTP server for the integration tests (aiosmtpd, Debian's python3-aiosmtpd).

Accepts every message and writes it to OUTDIR as NNN.eml (raw) once fully received.
Optional STARTTLS (--cert/--key, then required before MAIL) or TLS from the first byte
(--implicit) and AUTH PLAIN/LOGIN
(--user/--password). Prints "ready" when listening; stops on SIGTERM.
"""
import argparse
import asyncio
import os
import signal
import ssl

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


class Sink:
    def __init__(self, outdir):
        self.outdir = outdir
        self.n = 0

    async def handle_DATA(self, server, session, envelope):
        self.n += 1
        tmp = os.path.join(self.outdir, f".{self.n:03}.tmp")
        with open(tmp, "wb") as f:
            f.write(f"X-Envelope-From: {envelope.mail_from}\r\n".encode())
            f.write(f"X-Envelope-To: {','.join(envelope.rcpt_tos)}\r\n".encode())
            # Asked of the connection itself (aiosmtpd's session.ssl covers STARTTLS only).
            tls = server.transport.get_extra_info("ssl_object") is not None
            f.write(f"X-TLS: {'yes' if tls else 'no'}\r\n".encode())
            f.write(f"X-Auth: {session.authenticated and 'yes' or 'no'}\r\n".encode())
            f.write(envelope.original_content)
        os.rename(tmp, os.path.join(self.outdir, f"{self.n:03}.eml"))
        return "250 OK"


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--outdir", required=True)
    p.add_argument("--cert")
    p.add_argument("--key")
    p.add_argument("--user")
    p.add_argument("--password")
    p.add_argument("--implicit", action="store_true", help="TLS from the first byte (port 465 style)")
    a = p.parse_args()

    tls = None
    if a.cert:
        tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        tls.load_cert_chain(a.cert, a.key)

    def authenticator(server, session, envelope, mechanism, auth_data):
        ok = (
            isinstance(auth_data, LoginPassword)
            and auth_data.login.decode() == a.user
            and auth_data.password.decode() == a.password
        )
        # handled=False: aiosmtpd answers 535 itself on failure.
        return AuthResult(success=ok, handled=False)

    kwargs = {}
    if a.user:
        # aiosmtpd only counts STARTTLS as TLS for AUTH; an implicit-TLS session is TLS too.
        kwargs.update(authenticator=authenticator, auth_required=True, auth_require_tls=bool(tls) and not a.implicit)
    if tls and a.implicit:
        kwargs.update(ssl_context=tls)
    elif tls:
        kwargs.update(tls_context=tls, require_starttls=True)
    c = Controller(Sink(a.outdir), hostname="127.0.0.1", port=a.port, server_hostname="localhost", **kwargs)
    c.start()
    print("ready", flush=True)
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    try:
        # Bounded: a forgotten sink ends by itself after ten minutes.
        loop.run_until_complete(asyncio.wait_for(stop.wait(), timeout=600))
    except asyncio.TimeoutError:
        pass
    c.stop()


if __name__ == "__main__":
    main()
