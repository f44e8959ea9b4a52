// channels/history.hpp: what a room keeps, what a joiner is replayed, compaction and its bounds.
#include <gtest/gtest.h>

#include <thread>

#include "channels/history.hpp"

namespace sidewire {
namespace {

ws::SharedFrame text(const std::string& s) { return ws::make_shared_frame(ws::kText, s); }

std::vector<std::string> payloads(const std::vector<ws::SharedFrame>& frames) {
  std::vector<std::string> out;
  for (const auto& f : frames) out.emplace_back(ws::frame_payload(*f));
  return out;
}

HistoryOptions enabled() {
  HistoryOptions o;
  o.enabled = true;
  return o;
}

struct Recorded {
  std::uint64_t seq = 0;
  std::vector<History::Compaction> due;
};

Recorded keep(History& h, const std::vector<std::string>& rooms, const std::string& payload) {
  Recorded r;
  r.due = h.record(rooms, text(payload), h.keeps(payload), [](const std::string&) { return true; },
                   [&](std::uint64_t seq) { r.seq = seq; });
  return r;
}

TEST(History, ReplaysInOrderUpToWhatTheThreadDelivered) {
  History h(enabled());
  const auto a = keep(h, {"doc"}, "one");
  const auto b = keep(h, {"doc"}, "two");
  const auto c = keep(h, {"doc"}, "three");
  EXPECT_LT(a.seq, b.seq);
  EXPECT_LT(b.seq, c.seq);
  EXPECT_EQ(payloads(h.replay("doc", c.seq)), (std::vector<std::string>{"one", "two", "three"}));
  // "three" is still on its way to a thread that delivered only up to "two": it arrives live.
  EXPECT_EQ(payloads(h.replay("doc", b.seq)), (std::vector<std::string>{"one", "two"}));
  EXPECT_TRUE(h.replay("other", c.seq).empty());
}

TEST(History, EveryMessageTakesASequenceButOnlyKeptOnesAreStored) {
  HistoryOptions o = enabled();
  o.prefixes = {std::string("\x00\x01", 2), std::string("\x00\x02", 2)};
  History h(o);
  EXPECT_TRUE(h.keeps(std::string("\x00\x02upd", 5)));
  EXPECT_FALSE(h.keeps(std::string("\x01\x00aw", 4)));
  EXPECT_FALSE(h.keeps(""));
  const auto a = keep(h, {"doc"}, std::string("\x00\x02u1", 4));
  const auto b = keep(h, {"doc"}, std::string("\x01" "awareness", 10));
  EXPECT_EQ(b.seq, a.seq + 1);
  EXPECT_EQ(h.replay("doc", b.seq).size(), 1u);
  EXPECT_EQ(h.stats().messages, 1u);
}

TEST(History, RoomsTheCallerDoesNotKeepStayEmpty) {
  History h(enabled());
  h.record({"doc", "user:7"}, text("m"), true, [](const std::string& r) { return r.rfind("user:", 0) != 0; },
           [](std::uint64_t) {});
  EXPECT_EQ(h.replay("doc", 10).size(), 1u);
  EXPECT_TRUE(h.replay("user:7", 10).empty());
}

TEST(History, BoundsPushOutTheOldest) {
  HistoryOptions o = enabled();
  o.max_messages = 3;
  History h(o);
  std::uint64_t last = 0;
  for (int i = 0; i < 5; ++i) last = keep(h, {"doc"}, "m" + std::to_string(i)).seq;
  EXPECT_EQ(payloads(h.replay("doc", last)), (std::vector<std::string>{"m2", "m3", "m4"}));
  EXPECT_EQ(h.stats().dropped, 2u);

  HistoryOptions b = enabled();
  b.max_bytes = 3 * (2 + 10);  // three 10-byte messages, framed
  History hb(b);
  for (int i = 0; i < 4; ++i) last = keep(hb, {"doc"}, std::string(9, 'a') + std::to_string(i)).seq;
  EXPECT_EQ(hb.replay("doc", last).size(), 3u);
  EXPECT_LE(hb.stats().bytes, b.max_bytes);
}

TEST(History, MaxRoomsEvictsTheLeastRecentlySentTo) {
  HistoryOptions o = enabled();
  o.max_rooms = 2;
  History h(o);
  keep(h, {"a"}, "1");
  std::this_thread::sleep_for(std::chrono::milliseconds(2));
  keep(h, {"b"}, "2");
  std::this_thread::sleep_for(std::chrono::milliseconds(2));
  const auto c = keep(h, {"c"}, "3");
  EXPECT_TRUE(h.replay("a", c.seq).empty());
  EXPECT_EQ(h.replay("b", c.seq).size(), 1u);
  EXPECT_EQ(h.replay("c", c.seq).size(), 1u);
  EXPECT_EQ(h.stats().rooms_evicted, 1u);
}

constexpr std::uint64_t kAll = UINT64_MAX;  // every thread delivered everything

TEST(History, CompactionIsAskedOnceAndItsResultGoesFirst) {
  HistoryOptions o = enabled();
  o.compact_after = 3;
  History h(o);
  EXPECT_TRUE(keep(h, {"doc"}, "u1").due.empty());
  EXPECT_TRUE(keep(h, {"doc"}, "u2").due.empty());
  const auto third = keep(h, {"doc"}, "u3");
  ASSERT_EQ(third.due.size(), 1u);
  const History::Compaction first = third.due[0];
  EXPECT_EQ(first.room, "doc");
  EXPECT_EQ(first.upto, third.seq);
  EXPECT_NE(first.version, 0u);
  EXPECT_EQ(payloads(first.frames), (std::vector<std::string>{"u1", "u2", "u3"}));
  // In flight: not asked again.
  std::uint64_t last = 0;
  for (int i = 4; i < 8; ++i) {
    const auto r = keep(h, {"doc"}, "u" + std::to_string(i));
    EXPECT_TRUE(r.due.empty());
    last = r.seq;
  }
  EXPECT_EQ(h.replace("doc", first.upto, first.version, {text("merged(1-3)")}, kAll), History::Replaced::kDone);
  EXPECT_EQ(payloads(h.replay("doc", last)), (std::vector<std::string>{"merged(1-3)", "u4", "u5", "u6", "u7"}));
  // A compacted entry is replayed even to a thread behind it.
  EXPECT_EQ(payloads(h.replay("doc", 0)), (std::vector<std::string>{"merged(1-3)"}));
  EXPECT_EQ(h.stats().compactions, 1u);
  // Four entries since: due again on the next.
  const auto next = keep(h, {"doc"}, "u8");
  ASSERT_EQ(next.due.size(), 1u);
  EXPECT_EQ(payloads(next.due[0].frames).front(), "merged(1-3)");
  // The first snapshot's room has changed since: its result again is stale.
  EXPECT_EQ(h.replace("doc", first.upto, first.version, {text("stale")}, kAll), History::Replaced::kStale);
  EXPECT_EQ(h.replace("doc", next.due[0].upto, next.due[0].version, {text("merged(1-8)")}, kAll), History::Replaced::kDone);
  EXPECT_EQ(payloads(h.replay("doc", next.seq)), (std::vector<std::string>{"merged(1-8)"}));
}

TEST(History, AResultCoveringWhatAThreadHasNotDeliveredIsNotTaken) {
  HistoryOptions o = enabled();
  o.compact_after = 2;
  History h(o);
  keep(h, {"doc"}, "a");
  const auto b = keep(h, {"doc"}, "b");
  ASSERT_EQ(b.due.size(), 1u);
  // A thread has delivered only "a": a joiner there would get "b" inside the result and live.
  EXPECT_EQ(h.replace("doc", b.due[0].upto, b.due[0].version, {text("ab")}, b.seq - 1), History::Replaced::kLagging);
  EXPECT_EQ(payloads(h.replay("doc", b.seq)), (std::vector<std::string>{"a", "b"}));
  // Asked again with the next message.
  const auto c = keep(h, {"doc"}, "c");
  ASSERT_EQ(c.due.size(), 1u);
  EXPECT_EQ(h.replace("doc", c.due[0].upto, c.due[0].version, {text("abc")}, c.seq), History::Replaced::kDone);
}

TEST(History, AResultForARoomClearedOrEvictedMeanwhileIsDropped) {
  HistoryOptions o = enabled();
  o.compact_after = 1;
  History h(o);
  const auto a = keep(h, {"doc"}, "a");
  ASSERT_EQ(a.due.size(), 1u);
  h.clear("doc");
  EXPECT_EQ(h.replace("doc", a.due[0].upto, a.due[0].version, {text("old")}, kAll), History::Replaced::kStale);
  EXPECT_EQ(h.stats().rooms, 0u);
  // Cleared and sent to again: a new room, the old snapshot still stale.
  keep(h, {"doc"}, "fresh");
  EXPECT_EQ(h.replace("doc", a.due[0].upto, a.due[0].version, {text("old")}, kAll), History::Replaced::kStale);
  EXPECT_EQ(payloads(h.replay("doc", kAll)), (std::vector<std::string>{"fresh"}));
}

TEST(History, AFailedCompactionIsAskedAgain) {
  HistoryOptions o = enabled();
  o.compact_after = 1;
  History h(o);
  EXPECT_EQ(keep(h, {"doc"}, "a").due.size(), 1u);
  EXPECT_TRUE(keep(h, {"doc"}, "b").due.empty());
  h.compaction_failed("doc");
  EXPECT_EQ(keep(h, {"doc"}, "c").due.size(), 1u);
}

TEST(History, RestoreGoesBeforeWhatCameMeanwhileAndOnlyOnce) {
  History h(enabled());
  const auto live = keep(h, {"doc"}, "live");
  EXPECT_TRUE(h.restore("doc", {text("saved")}));
  EXPECT_EQ(payloads(h.replay("doc", live.seq)), (std::vector<std::string>{"saved", "live"}));
  // A second restore (or one after a compaction) would put a second base state in: refused.
  EXPECT_FALSE(h.restore("doc", {text("saved again")}));
  EXPECT_EQ(h.size("doc"), 2u);
  // The app's replace takes everything the threads delivered.
  EXPECT_EQ(h.replace("doc", kAll, 0, {text("all")}, kAll), History::Replaced::kDone);
  EXPECT_EQ(payloads(h.replay("doc", live.seq)), (std::vector<std::string>{"all"}));
  EXPECT_EQ(h.replace("doc", kAll, 0, {}, kAll), History::Replaced::kDone);
  EXPECT_EQ(h.stats().rooms, 0u);
  EXPECT_EQ(h.stats().messages, 0u);
  EXPECT_EQ(h.stats().bytes, 0u);
}

TEST(History, ABaseStatePushedOutTakesItsRoomWithIt) {
  HistoryOptions o = enabled();
  o.max_messages = 3;
  History h(o);
  EXPECT_TRUE(h.restore("doc", {text("base")}));
  keep(h, {"doc"}, "u1");
  keep(h, {"doc"}, "u2");
  EXPECT_EQ(h.size("doc"), 3u);
  // The next would push the base out: the updates alone mean nothing, the room goes.
  keep(h, {"doc"}, "u3");
  EXPECT_EQ(h.size("doc"), 0u);
  EXPECT_EQ(h.stats().messages, 0u);
  EXPECT_EQ(h.stats().dropped, 4u);
  // A result past the bounds is not taken.
  keep(h, {"doc"}, "x");
  EXPECT_EQ(h.replace("doc", kAll, 0, {text("1"), text("2"), text("3"), text("4")}, kAll), History::Replaced::kTooLarge);
  EXPECT_EQ(payloads(h.replay("doc", kAll)), (std::vector<std::string>{"x"}));
}

TEST(History, EntriesPastTheirTtlAreNotReplayedAndAreSwept) {
  HistoryOptions o = enabled();
  o.ttl_ms = 20;
  History h(o);
  const auto a = keep(h, {"doc"}, "old");
  std::this_thread::sleep_for(std::chrono::milliseconds(40));
  EXPECT_TRUE(h.replay("doc", a.seq).empty());
  EXPECT_TRUE(h.snapshot("doc").frames.empty());
  h.sweep();
  EXPECT_EQ(h.stats().messages, 0u);
  EXPECT_EQ(h.stats().expired, 1u);
  EXPECT_EQ(h.stats().rooms, 0u);
}

TEST(History, ARoomIsKnownOnceLoadedOrMarkedNotWhenMessagesAloneMadeIt) {
  History h(enabled());
  EXPECT_FALSE(h.known("doc"));
  keep(h, {"doc"}, "increment");
  EXPECT_FALSE(h.known("doc"));  // its base may still be in the app's store
  EXPECT_TRUE(h.restore("doc", {text("base")}));
  EXPECT_TRUE(h.known("doc"));
  EXPECT_EQ(payloads(h.replay("doc", kAll)), (std::vector<std::string>{"base", "increment"}));
  h.mark_known("empty");
  EXPECT_TRUE(h.known("empty"));
  EXPECT_EQ(h.size("empty"), 0u);
  h.clear("doc");
  EXPECT_FALSE(h.known("doc"));
}

}  // namespace
}  // namespace sidewire
