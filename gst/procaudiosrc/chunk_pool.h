// SPDX-License-Identifier: LGPL-2.1-or-later
// The buffers chunks are pushed in: from a GstBufferPool that GstBaseSrc keeps (downstream's,
// when it proposes one, else a plain pool of ours), sized for one whole chunk, so that a
// capture allocates nothing per chunk once the pool has warmed up.
#pragma once

#include <gst/base/gstbasesrc.h>

namespace procaudio {

// Frames of one chunk: latency-time at `rate`, at least one.
guint chunk_frames_for(guint64 latency_time_us, guint rate);

// decide_allocation: makes sure the query names a pool whose buffers hold `chunk_bytes`,
// before GstBaseSrc's default handling configures (or creates) and activates it.
void want_chunk_pool(GstQuery *query, guint chunk_bytes);

// A buffer of at least `chunk_bytes` from the negotiated pool. GST_FLOW_FLUSHING while
// flushing; GST_FLOW_ERROR (with an element error posted) when no memory can be had.
GstFlowReturn acquire_chunk(GstBaseSrc *src, gsize chunk_bytes, GstBuffer **buffer);

}  // namespace procaudio
