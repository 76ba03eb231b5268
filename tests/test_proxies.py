"""The login throttle's client address behind a reverse proxy (gis.base.proxies.py)."""
import pytest

from gis.base.errors import InputError
from gis.base.proxies import client_address, parse_networks
from gis.base.settings import Settings

PROXY = parse_networks("10.0.0.5, 192.168.1.0/24")


def test_direct_connection_is_its_own_address_whatever_the_header_says():
    assert client_address("203.0.113.7", "1.2.3.4", PROXY) == "203.0.113.7"
    assert client_address("203.0.113.7", None, ()) == "203.0.113.7"


def test_this_machine_without_an_address_is_localhost():
    assert client_address(None, "1.2.3.4", PROXY) == "localhost"


def test_through_a_trusted_proxy_the_address_it_appended_counts():
    assert client_address("10.0.0.5", "198.51.100.20", PROXY) == "198.51.100.20"


def test_a_forged_left_entry_does_not_count():
    # the client sent "X-Forwarded-For: 1.1.1.1"; nginx appended the address it saw
    assert client_address("10.0.0.5", "1.1.1.1, 198.51.100.20", PROXY) == "198.51.100.20"


def test_chained_trusted_proxies_are_skipped():
    assert client_address("10.0.0.5", "198.51.100.20, 192.168.1.9", PROXY) == "198.51.100.20"


def test_only_proxies_all_the_way_gives_the_leftmost():
    assert client_address("10.0.0.5", "192.168.1.8, 192.168.1.9", PROXY) == "192.168.1.8"


def test_garbage_hop_stops_at_the_last_believed_address():
    assert client_address("10.0.0.5", "198.51.100.20, not-an-ip", PROXY) == "10.0.0.5"


def test_ports_and_ipv6_are_read():
    nets = parse_networks("::1, 10.0.0.0/8")
    assert client_address("::1", "[2001:db8::7]:5555", nets) == "2001:db8::7"
    assert client_address("10.1.2.3", "198.51.100.20:443", nets) == "198.51.100.20"


def test_the_setting_is_checked():
    assert Settings.load(env={"RENEWAL_TRUSTED_PROXIES": "10.0.0.5,192.168.1.0/24"}).trusted_networks == PROXY
    with pytest.raises(InputError):
        Settings.load(env={"RENEWAL_TRUSTED_PROXIES": "10.0.0.x"})
