"""The largest PDU we accept reaches the peer: a real pynetdicom storage SCP on loopback (no PACS needed)
records what each association request offers."""

from __future__ import annotations

import socket

import pytest
from pynetdicom import AE, evt
from pynetdicom.sop_class import Verification

from dicompose.pacs.address import parse_pacs_url
from dicompose.pacs.association import NetworkSettings, associated


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.parametrize("max_pdu", [0, 4096, 65536])
def test_our_max_pdu_is_what_the_peer_is_told(max_pdu: int) -> None:
    offered: list[int] = []
    scp = AE(ae_title="PEER")
    scp.add_supported_context(Verification)
    port = _free_port()
    handlers = [(evt.EVT_REQUESTED, lambda event: offered.append(event.assoc.requestor.maximum_length))]
    server = scp.start_server(("127.0.0.1", port), block=False, evt_handlers=handlers)
    try:
        settings = NetworkSettings(max_pdu=max_pdu, attempts=1, timeout=5)
        with associated(
            parse_pacs_url(f"dicom://PEER@127.0.0.1:{port}"), settings, [(Verification, ["1.2.840.10008.1.2"])]
        ) as assoc:
            assert assoc.send_c_echo().Status == 0
    finally:
        server.shutdown()
    assert offered == [max_pdu]
