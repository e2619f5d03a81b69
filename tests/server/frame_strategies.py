"""Hypothesis strategies for WebSocket client frames (the fuzzing of the decoder and of
the session core)."""

from __future__ import annotations

import json

from hypothesis import strategies as st

from server.ws.ops import OPS

# Any JSON value, nested a little; and frames that look like requests (an id, an op, known
# argument names with any values), so the fuzzing reaches past the envelope into the ops.
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
ARGS = [
    "channel",
    "content",
    "idempotency_key",
    "limit",
    "max_id",
    "media_ids",
    "post_id",
    "q",
    "since",
    "token",
    "type",
    "up_to_id",
    "user_id",
]
requests = st.builds(
    lambda rid, op, args: json.dumps({"id": rid, "op": op, **args}),
    st.integers(min_value=-(2**70), max_value=2**70) | st.just(1),
    st.sampled_from(sorted(OPS)) | st.text(max_size=12),
    st.dictionaries(
        st.sampled_from(ARGS), json_values | st.from_regex(r"[1-9][0-9]{0,18}"), max_size=4
    ),
)
FRAMES = st.one_of(st.text(max_size=200), json_values.map(json.dumps), requests)
# What a socket may also receive: binary frames.
RAW_FRAMES = st.binary(max_size=300) | FRAMES
