// Logging straight to the systemd journal (sd_journal_sendv), with a PRIORITY per
// event and the structured fields of util/log_fields.h (TICKET_ID, SESSION_ID, ...),
// so that `journalctl -u ticketaid TICKET_ID=4711` finds one ticket's story.
//
// Used when the daemon's standard error is the journal stream systemd set up
// (JOURNAL_STREAM names its device and inode); otherwise lines go to standard error.
//
// Thread-safety: the sink may be called from any thread (spdlog's mutex sink).
#pragma once

#include <spdlog/common.h>

namespace ticketaid {

// True when standard error is connected to the journal (JOURNAL_STREAM matches it).
bool stderr_is_journal();

spdlog::sink_ptr make_journal_sink();

}  // namespace ticketaid
