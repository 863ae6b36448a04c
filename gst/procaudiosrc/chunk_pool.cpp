// SPDX-License-Identifier: LGPL-2.1-or-later
#include "chunk_pool.h"

namespace procaudio {

guint chunk_frames_for(guint64 latency_time_us, guint rate) {
  return static_cast<guint>(MAX(gst_util_uint64_scale_int(latency_time_us, rate, 1000000), 1));
}

void want_chunk_pool(GstQuery *query, guint chunk_bytes) {
  if (gst_query_get_n_allocation_pools(query) == 0) {
    // No pool proposed: GstBaseSrc makes a plain one for an entry without a pool.
    gst_query_add_allocation_pool(query, nullptr, chunk_bytes, 0, 0);
    return;
  }
  GstBufferPool *pool = nullptr;
  guint size = 0, min = 0, max = 0;
  gst_query_parse_nth_allocation_pool(query, 0, &pool, &size, &min, &max);
  gst_query_set_nth_allocation_pool(query, 0, pool, MAX(size, chunk_bytes), min, max);
  if (pool != nullptr) {
    gst_object_unref(pool);
  }
}

GstFlowReturn acquire_chunk(GstBaseSrc *src, gsize chunk_bytes, GstBuffer **buffer) {
  *buffer = nullptr;
  if (GstBufferPool *pool = gst_base_src_get_buffer_pool(src)) {
    const GstFlowReturn ret = gst_buffer_pool_acquire_buffer(pool, buffer, nullptr);
    gst_object_unref(pool);
    if (ret != GST_FLOW_OK) {
      return ret;
    }
    if (gst_buffer_get_size(*buffer) >= chunk_bytes) {
      return GST_FLOW_OK;
    }
    // Downstream's pool kept a smaller size than asked for: one buffer of our own instead.
    gst_buffer_unref(*buffer);
    *buffer = nullptr;
  }
  GstAllocator *allocator = nullptr;
  GstAllocationParams params;
  gst_base_src_get_allocator(src, &allocator, &params);
  *buffer = gst_buffer_new_allocate(allocator, chunk_bytes, &params);
  if (allocator != nullptr) {
    gst_object_unref(allocator);
  }
  if (*buffer == nullptr) {
    GST_ELEMENT_ERROR(src, RESOURCE, FAILED, ("Out of memory."),
                      ("could not allocate a buffer of %" G_GSIZE_FORMAT " bytes", chunk_bytes));
    return GST_FLOW_ERROR;
  }
  return GST_FLOW_OK;
}

}  // namespace procaudio
