// The connection state recovery store alone: offsets, which packets a returning socket missed,
// taking and putting back a record, the window, and the byte bound.
#include "socketio/recovery.hpp"

#include <gtest/gtest.h>

#include <set>
#include <thread>

using sidewire::sio::RecoveryConfig;
using sidewire::sio::RecoveryStore;
namespace ws = sidewire::ws;

namespace {
constexpr std::size_t kNoLimit = ~std::size_t{0};

// Logs one packet whose single frame is `name`; returns its offset.
std::string log_packet(RecoveryStore& store, std::uint32_t nsp, const std::string& name, std::vector<std::string> rooms,
                       std::vector<std::string> except = {}, sidewire::ClientId target = 0) {
  std::string offset;
  store.log(nsp, rooms, except, target, [&](const std::string& o) {
    offset = o;
    return std::vector<ws::SharedFrame>{std::make_shared<const std::string>(name)};
  });
  return offset;
}

std::vector<std::string> names(const std::vector<ws::SharedFrame>& frames) {
  std::vector<std::string> out;
  for (const auto& f : frames) out.push_back(*f);
  return out;
}

void enable(RecoveryStore& store, std::uint32_t window_ms = 60000, std::size_t max_bytes = 1u << 20) {
  store.configure(RecoveryConfig{true, window_ms, max_bytes});
}
}  // namespace

TEST(Recovery, OffsetsAreDistinctAndShort) {
  RecoveryStore store;
  enable(store);
  std::set<std::string> seen;
  for (int i = 0; i < 1000; ++i) {
    const std::string o = log_packet(store, 0, "p", {});
    EXPECT_LE(o.size(), 4u);
    EXPECT_TRUE(seen.insert(o).second) << o;
  }
}

TEST(Recovery, MissedPacketsAreTheOnesForItsRoomsAfterItsOffset) {
  RecoveryStore store;
  enable(store);
  const std::string last = log_packet(store, 0, "before", {});
  store.persist(0, "pid1", "sid1", 7, {"sid1", "r"});
  log_packet(store, 0, "everyone", {});
  log_packet(store, 0, "room r", {"r"});
  log_packet(store, 0, "other room", {"x"});
  log_packet(store, 0, "r but except r", {"r"}, {"r"});
  log_packet(store, 0, "everyone except x", {}, {"x"});
  log_packet(store, 0, "own id", {"sid1"});
  log_packet(store, 0, "direct", {}, {}, 7);
  log_packet(store, 0, "direct to another", {}, {}, 8);
  log_packet(store, 1, "other namespace", {});
  auto t = store.take(0, "pid1", last, kNoLimit);
  ASSERT_TRUE(t);
  EXPECT_EQ(t->sid, "sid1");
  EXPECT_EQ(t->pid, "pid1");
  EXPECT_EQ(t->rooms, (std::vector<std::string>{"sid1", "r"}));
  // Logged between the take and the snapshot (its delivery still queued): in the replay.
  log_packet(store, 0, "after the take", {"r"});
  // Emitted to the socket it is now (JS accepted it and emitted at once, before the accept
  // reached its thread): in the replay too, in order.
  log_packet(store, 0, "to its new id", {}, {}, 9);
  std::uint64_t upto = 0;
  EXPECT_EQ(names(store.missed(0, *t, 9, ~std::uint64_t{0}, upto)), (std::vector<std::string>{"everyone", "room r", "everyone except x", "own id",
                                                                          "direct", "after the take", "to its new id"}));
  // The sequence number of the last packet logged in namespace 0: the socket skips up to it.
  EXPECT_EQ(upto, 11u);
  EXPECT_EQ(store.stats().recovered, 1u);
}

TEST(Recovery, TheReplayStopsAtItsBound) {
  // JS accepted the socket when packet 3 was the last logged: later ones reach it live.
  RecoveryStore store;
  enable(store);
  const std::string last = log_packet(store, 0, "1", {});
  store.persist(0, "pid1", "sid1", 7, {"sid1"});
  log_packet(store, 0, "2", {});
  log_packet(store, 0, "3", {});
  auto t = store.take(0, "pid1", last, kNoLimit);
  ASSERT_TRUE(t);
  const std::uint64_t bound = store.last_seq(0);
  EXPECT_EQ(bound, 3u);
  log_packet(store, 0, "4 (after the accept)", {});
  std::uint64_t upto = 0;
  EXPECT_EQ(names(store.missed(0, *t, 9, bound, upto)), (std::vector<std::string>{"2", "3"}));
  EXPECT_EQ(upto, 3u);
}

TEST(Recovery, UnknownSessionOrOffsetIsNotRecovered) {
  RecoveryStore store;
  enable(store);
  const std::string o = log_packet(store, 0, "a", {});
  store.persist(0, "pid1", "sid1", 7, {"sid1"});
  EXPECT_FALSE(store.take(0, "nope", o, kNoLimit));
  for (const char* bad : {"zzzz", "", "01", "A", "-1", "zzzzzzzzzzzzzzzz"}) EXPECT_FALSE(store.take(0, "pid1", bad, kNoLimit)) << bad;
  EXPECT_FALSE(store.take(1, "pid1", o, kNoLimit));
  auto t = store.take(0, "pid1", o, kNoLimit);
  ASSERT_TRUE(t);
  // Taken: a second connection with the same private id does not get it too.
  EXPECT_FALSE(store.take(0, "pid1", o, kNoLimit));
  // Refused by a middleware: it goes back, for another try.
  store.put_back(0, *t);
  EXPECT_EQ(store.stats().sessions, 1u);
  EXPECT_TRUE(store.take(0, "pid1", o, kNoLimit));
  EXPECT_EQ(store.stats().sessions, 0u);
}

TEST(Recovery, MoreMissedThanTheConnectionCouldQueueConnectsAsNew) {
  RecoveryStore store;
  enable(store);
  const std::string o = log_packet(store, 0, "a", {});
  store.persist(0, "pid1", "sid1", 7, {"sid1"});
  for (int i = 0; i < 10; ++i) log_packet(store, 0, std::string(100, 'x'), {});
  EXPECT_FALSE(store.take(0, "pid1", o, 500));
  // And the record is gone: it does not come back to overflow again.
  EXPECT_FALSE(store.take(0, "pid1", o, kNoLimit));
}

TEST(Recovery, RecordsAndPacketsExpireWithTheWindow) {
  RecoveryStore store;
  enable(store, 50);
  const std::string o = log_packet(store, 0, "a", {});
  store.persist(0, "pid1", "sid1", 7, {"sid1"});
  EXPECT_EQ(store.stats().sessions, 1u);
  std::this_thread::sleep_for(std::chrono::milliseconds(120));
  EXPECT_FALSE(store.take(0, "pid1", o, kNoLimit));
  const auto s = store.stats();
  EXPECT_EQ(s.sessions, 0u);
  EXPECT_EQ(s.packets, 0u);
  EXPECT_EQ(s.bytes, 0u);
  EXPECT_EQ(s.expired, 1u);
}

TEST(Recovery, TheLogAndTheRecordsAreBoundedInBytes) {
  RecoveryStore store;
  enable(store, 60000, 8192);
  const std::string first = log_packet(store, 0, std::string(1000, 'a'), {});
  store.persist(0, "pid1", "sid1", 7, {"sid1"});
  for (int i = 0; i < 20; ++i) log_packet(store, 0, std::string(1000, 'b'), {});
  auto s = store.stats();
  EXPECT_LE(s.bytes, 8192u);
  EXPECT_GT(s.evicted, 0u);
  // Its offset went with the oldest packets: it connects as new.
  EXPECT_FALSE(store.take(0, "pid1", first, kNoLimit));
  // Records count too: many with many rooms push the oldest out.
  std::vector<std::string> rooms(50, std::string(40, 'r'));
  for (int i = 0; i < 100; ++i) store.persist(0, "pid" + std::to_string(i), "sid", 1, rooms);
  s = store.stats();
  EXPECT_LE(s.bytes, 8192u);
  EXPECT_LT(s.sessions, 100u);
  EXPECT_GT(s.sessions, 0u);
}

TEST(Recovery, ReconnectChurnStaysBounded) {
  // A client that drops and comes back over and over within the window.
  RecoveryStore store;
  enable(store, 60000, 64 * 1024);
  const std::string o = log_packet(store, 0, "a", {});
  for (int i = 0; i < 20000; ++i) {
    store.persist(0, "pid", "sid", 7, {"sid"});
    auto t = store.take(0, "pid", o, kNoLimit);
    ASSERT_TRUE(t) << i;
  }
  EXPECT_LE(store.stats().bytes, 64u * 1024);
}

TEST(Recovery, TurningItOffDropsEverything) {
  RecoveryStore store;
  enable(store);
  log_packet(store, 0, "a", {});
  store.persist(0, "pid1", "sid1", 7, {"sid1"});
  store.configure(RecoveryConfig{});
  EXPECT_FALSE(store.enabled());
  const auto s = store.stats();
  EXPECT_EQ(s.sessions + s.packets + s.bytes, 0u);
}
