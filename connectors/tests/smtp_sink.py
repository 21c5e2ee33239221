"""A loopback SMTP server for the email sink's tests (aiosmtpd).

Usage: python3 smtp_sink.py PORT OUTDIR
Writes each accepted message to OUTDIR/<n>.eml (envelope first as X-Envelope-* lines), prints
"ready" once listening. RCPT to reject@... answers 550, to later@... answers 451.
"""
import os
import sys
import time

from aiosmtpd.controller import Controller


class Handler:
    def __init__(self, out):
        self.out = out
        self.count = 0

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.startswith("reject@"):
            return "550 5.1.1 <%s>: Recipient address rejected" % address
        if address.startswith("later@"):
            return "451 4.3.0 Try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.count += 1
        path = os.path.join(self.out, "%d.eml" % self.count)
        head = "X-Envelope-From: %s\r\nX-Envelope-To: %s\r\n" % (
            envelope.mail_from,
            ",".join(envelope.rcpt_tos),
        )
        with open(path + ".tmp", "wb") as f:
            f.write(head.encode() + envelope.original_content)
        os.rename(path + ".tmp", path)
        return "250 2.0.0 Ok: queued as %d" % self.count


def main():
    port, out = int(sys.argv[1]), sys.argv[2]
    controller = Controller(Handler(out), hostname="127.0.0.1", port=port)
    controller.start()
    print("ready", flush=True)
    try:
        while True:
            time.sleep(3600)
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
