"""A resolver that knows no name: every query is answered NXDOMAIN at once (UDP and TCP port 53).

The swarm test's hosts have no uplink, so the engines' embedded DNS, which asks the host's resolver
for any name that is not a service, waits 10 s for an answer that never comes (a node name with no
task, between two tasks). A real host's resolver says "no such name" at once; this one does too.
    python3 deploy/swarm/nxdns.py ADDRESS
"""

import socketserver
import struct
import sys
import threading


def nxdomain(query: bytes) -> bytes:
    """The answer to ``query``: its ID and question, flags QR RD RA and RCODE 3, no records."""
    if len(query) < 12:
        return b""
    ident, flags, qdcount = struct.unpack("!HHH", query[:6])
    rd = flags & 0x0100
    head = struct.pack("!HHHHHH", ident, 0x8083 | rd, qdcount, 0, 0, 0)
    return head + query[12:]


class Udp(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        data, sock = self.request
        answer = nxdomain(data)
        if answer:
            sock.sendto(answer, self.client_address)


class Tcp(socketserver.StreamRequestHandler):
    def handle(self) -> None:
        size = self.rfile.read(2)
        if len(size) == 2:
            answer = nxdomain(self.rfile.read(struct.unpack("!H", size)[0]))
            self.wfile.write(struct.pack("!H", len(answer)) + answer)


def main() -> None:
    address = sys.argv[1]
    udp = socketserver.ThreadingUDPServer((address, 53), Udp)
    tcp = socketserver.ThreadingTCPServer((address, 53), Tcp)
    threading.Thread(target=tcp.serve_forever, daemon=True).start()
    udp.serve_forever()


if __name__ == "__main__":
    main()
