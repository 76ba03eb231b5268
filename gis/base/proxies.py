"""Who is knocking: the address the login throttle counts failed passwords against.

Behind the office's reverse proxy every connection comes from the proxy, so counting by the
connection's address would lock the whole office out after one planner's typos (and let one
guesser spread attempts across nobody). The proxy appends the address it saw to
``X-Forwarded-For``; that header is believed only when the connection itself comes from a
proxy the office trusts (setting ``trusted_proxies``), and then only the entries those proxies
added: the list is read from the right, skipping trusted hops, and the first other address is
the client. Entries further left were written by the client and could say anything.
"""
from __future__ import annotations

import ipaddress

from gis.base.errors import InputError

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(text: str) -> tuple[Network, ...]:
    """``"10.0.0.5, 192.168.1.0/24"`` → networks; a bare address is a /32 (/128).

    Raises:
        InputError: an entry is neither an address nor a network.
    """
    nets = []
    for part in (p.strip() for p in text.replace(";", ",").split(",")):
        if not part:
            continue
        try:
            nets.append(ipaddress.ip_network(part, strict=False))
        except ValueError:
            raise InputError("error.bad_setting", name="trusted_proxies", value=part) from None
    return tuple(nets)


def _address(text: str):
    text = text.strip()
    if text.startswith("[") and "]" in text:  # [v6]:port
        text = text[1:text.index("]")]
    elif text.count(":") == 1:  # v4:port
        text = text.split(":", 1)[0]
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _trusted(addr, trusted: tuple[Network, ...]) -> bool:
    return any(addr.version == n.version and addr in n for n in trusted)


def client_address(peer: str | None, forwarded_for: str | None, trusted: tuple[Network, ...]) -> str:
    """The client's address for ``peer`` (the connection's address, None on this machine) and the
    request's ``X-Forwarded-For`` header, believing the header only through ``trusted`` proxies."""
    peer_addr = _address(peer) if peer else None
    if peer_addr is None:
        return peer or "localhost"
    if not forwarded_for or not _trusted(peer_addr, trusted):
        return str(peer_addr)
    hops = [h for h in forwarded_for.split(",") if h.strip()]
    client = peer_addr
    for hop in reversed(hops):
        addr = _address(hop)
        if addr is None:  # a hop no trusted proxy would write: stop at the last address we believe
            break
        client = addr
        if not _trusted(addr, trusted):
            break
    return str(client)
