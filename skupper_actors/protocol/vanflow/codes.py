"""Skupper's vanflow record types and attribute codes (skupper-router's vanflow.h)."""

from __future__ import annotations

from enum import IntEnum


class RecordType(IntEnum):
    SITE = 0
    ROUTER = 1
    LINK = 2
    CONTROLLER = 3
    LISTENER = 4
    CONNECTOR = 5
    FLOW = 6
    PROCESS = 7
    IMAGE = 8
    INGRESS = 9
    EGRESS = 10
    COLLECTOR = 11
    PROCESS_GROUP = 12
    HOST = 13
    LOG = 14
    ROUTER_ACCESS = 15
    BIFLOW_TPORT = 16
    BIFLOW_APP = 17


class Attr(IntEnum):
    """Attribute codes; the names are the router's (camelCase in its logs)."""

    RECORD_TYPE = 0
    IDENTITY = 1
    PARENT = 2
    START_TIME = 3
    END_TIME = 4
    COUNTERFLOW = 5
    PEER = 6
    PROCESS = 7
    SIB_ORDINAL = 8
    LOCATION = 9
    PROVIDER = 10
    PLATFORM = 11
    NAMESPACE = 12
    MODE = 13
    SOURCE_HOST = 14
    DEST_HOST = 15
    PROTOCOL = 16
    SOURCE_PORT = 17
    DEST_PORT = 18
    VAN_ADDRESS = 19
    IMAGE_NAME = 20
    IMAGE_VERSION = 21
    HOSTNAME = 22
    OCTETS = 23
    LATENCY = 24
    TRANSIT_LATENCY = 25
    BACKLOG = 26
    METHOD = 27
    RESULT = 28
    REASON = 29
    NAME = 30
    TRACE = 31
    BUILD_VERSION = 32
    LINK_COST = 33
    DIRECTION = 34
    OCTET_RATE = 35
    OCTETS_OUT = 36
    OCTETS_UNACKED = 37
    WINDOW_CLOSURES = 38
    WINDOW_SIZE = 39
    FLOW_COUNT_L4 = 40
    FLOW_COUNT_L7 = 41
    FLOW_RATE_L4 = 42
    FLOW_RATE_L7 = 43
    DURATION = 44
    IMAGE = 45
    GROUP = 46
    STREAM_ID = 47
    LOG_SEVERITY = 48
    LOG_TEXT = 49
    SOURCE_FILE = 50
    SOURCE_LINE = 51
    LINK_COUNT = 52
    OPER_STATUS = 53
    ROLE = 54
    UP_TIMESTAMP = 55
    DOWN_TIMESTAMP = 56
    DOWN_COUNT = 57
    OCTETS_REVERSE = 58
    OCTET_RATE_REVERSE = 59
    CONNECTOR = 60
    PROCESS_LATENCY = 61
    PROXY_HOST = 62
    PROXY_PORT = 63
    ERROR_LISTENER_SIDE = 64
    ERROR_CONNECTOR_SIDE = 65
    ACTIVE_TLS_ORDINAL = 66
    HTTP_PROXY = 67


#: attributes whose values are unsigned integers (counters, times in µs since the
#: epoch, latencies in µs); every other attribute is a string
INTEGER_ATTRS = frozenset(
    {
        Attr.RECORD_TYPE,
        Attr.START_TIME,
        Attr.END_TIME,
        Attr.SIB_ORDINAL,
        Attr.OCTETS,
        Attr.LATENCY,
        Attr.TRANSIT_LATENCY,
        Attr.BACKLOG,
        Attr.LINK_COST,
        Attr.OCTET_RATE,
        Attr.OCTETS_OUT,
        Attr.OCTETS_UNACKED,
        Attr.WINDOW_CLOSURES,
        Attr.WINDOW_SIZE,
        Attr.FLOW_COUNT_L4,
        Attr.FLOW_COUNT_L7,
        Attr.FLOW_RATE_L4,
        Attr.FLOW_RATE_L7,
        Attr.DURATION,
        Attr.LOG_SEVERITY,
        Attr.SOURCE_LINE,
        Attr.LINK_COUNT,
        Attr.UP_TIMESTAMP,
        Attr.DOWN_TIMESTAMP,
        Attr.DOWN_COUNT,
        Attr.OCTETS_REVERSE,
        Attr.OCTET_RATE_REVERSE,
        Attr.PROCESS_LATENCY,
        Attr.ACTIVE_TLS_ORDINAL,
    }
)

#: records whose number grows with traffic: created only under the live-record cap,
#: sent on ``mc/sfe.<id>.flows``
FLOW_TYPES = frozenset({RecordType.FLOW, RecordType.BIFLOW_TPORT, RecordType.BIFLOW_APP})

#: what the connector side's co-record of a BIFLOW_TPORT may set
CO_RECORD_ATTRS = frozenset(
    {
        Attr.CONNECTOR,
        Attr.PROXY_HOST,
        Attr.PROXY_PORT,
        Attr.PROCESS_LATENCY,
        Attr.ERROR_CONNECTOR_SIDE,
        Attr.TRACE,
    }
)

#: log severities of LOG records
LOG_DEBUG, LOG_INFO, LOG_WARNING, LOG_ERROR, LOG_CRITICAL = range(5)

#: a vanflow attribute value
Value = int | str
