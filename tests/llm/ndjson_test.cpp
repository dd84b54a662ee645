// The NDJSON splitter: every split of the input gives the same lines.
#include "llm/ndjson.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace ticketaid {
namespace {

std::vector<std::string> split_in_two(const std::string& input, std::size_t at) {
  NdjsonSplitter splitter;
  std::vector<std::string> lines;
  auto collect = [&](std::string_view line) {
    lines.emplace_back(line);
    return true;
  };
  EXPECT_TRUE(splitter.feed(std::string_view(input).substr(0, at), collect));
  EXPECT_TRUE(splitter.feed(std::string_view(input).substr(at), collect));
  return lines;
}

TEST(NdjsonSplitter, SameLinesWhateverTheByteOffsetOfTheSplit) {
  // Multi-byte UTF-8 (é is 2 bytes, € is 3, 🖨 is 4) so that splits fall inside them.
  const std::string input =
      "{\"message\":{\"content\":\"Caf\xc3\xa9\"}}\n"
      "{\"message\":{\"content\":\"\xe2\x82\xac 5\"}}\r\n"
      "\n"
      "{\"message\":{\"content\":\"\xf0\x9f\x96\xa8\"},\"done\":true}\n";
  const std::vector<std::string> expected = {
      "{\"message\":{\"content\":\"Caf\xc3\xa9\"}}",
      "{\"message\":{\"content\":\"\xe2\x82\xac 5\"}}",
      "{\"message\":{\"content\":\"\xf0\x9f\x96\xa8\"},\"done\":true}",
  };
  for (std::size_t at = 0; at <= input.size(); ++at) {
    EXPECT_EQ(split_in_two(input, at), expected) << "split at byte " << at;
  }
}

TEST(NdjsonSplitter, ByteByByte) {
  const std::string input = "{\"a\":1}\n{\"b\":2}\n{\"c\":";
  NdjsonSplitter splitter;
  std::vector<std::string> lines;
  for (char c : input) {
    ASSERT_TRUE(splitter.feed(std::string_view(&c, 1), [&](std::string_view line) {
      lines.emplace_back(line);
      return true;
    }));
  }
  EXPECT_EQ(lines, (std::vector<std::string>{"{\"a\":1}", "{\"b\":2}"}));
  EXPECT_EQ(splitter.pending(), "{\"c\":");
}

TEST(NdjsonSplitter, LineOverTheLimitStopsTheSplitter) {
  NdjsonSplitter splitter(8);
  int calls = 0;
  auto count = [&](std::string_view) {
    ++calls;
    return true;
  };
  EXPECT_TRUE(splitter.feed("1234567\n", count));
  EXPECT_FALSE(splitter.feed("12345", count) && splitter.feed("6789\n", count));
  EXPECT_TRUE(splitter.overflowed());
  EXPECT_FALSE(splitter.feed("ok\n", count));
  EXPECT_EQ(calls, 1);
}

TEST(NdjsonSplitter, CallbackCanStopReading) {
  NdjsonSplitter splitter;
  int calls = 0;
  EXPECT_FALSE(splitter.feed("a\nb\nc\n", [&](std::string_view) { return ++calls < 2; }));
  EXPECT_EQ(calls, 2);
}

}  // namespace
}  // namespace ticketaid
