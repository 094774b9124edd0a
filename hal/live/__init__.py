"""The live view: the running robot in Foxglove through foxglove-sdk (DESIGN §9).

``--live [HOST:]PORT`` on the appliance starts :class:`~hal.live.session.LiveSession`; the
:class:`~hal.live.publisher.LivePublisher` takes records from the loop without waiting and
publishes them from its own thread; :mod:`hal.live.messages` builds Foxglove's typed messages for
both the live view and the ``--record`` log.
"""

from hal.live.mailbox import Mailbox, RateGate
from hal.live.publisher import LiveConfig, LivePublisher, PolicyView
from hal.live.sdk import foxglove_sdk, is_loopback_host, parse_live_address
from hal.live.session import LiveSession

__all__ = ["LiveConfig", "LivePublisher", "LiveSession", "Mailbox", "PolicyView", "RateGate",
           "foxglove_sdk", "is_loopback_host", "parse_live_address"]
