// The connection state recovery store alone: offsets, which packets a returning socket missed,
// the window, and the byte bound.
#include "socketio/recovery.hpp"

#include <gtest/gtest.h>

#include <set>
#include <thread>

using sidewire::sio::RecoveryConfig;
using sidewire::sio::RecoveryStore;
namespace ws = sidewire::ws;

namespace {
// Logs one packet whose single frame is "<name>:<offset>".
std::string log_packet(RecoveryStore& store, std::uint32_t nsp, const std::string& name, std::vector<std::string> rooms,
                       std::vector<std::string> except = {}, sidewire::ClientId target = 0) {
  std::string offset;
  store.log(nsp, rooms, except, target, [&](const std::string& o) {
    offset = o;
    return std::vector<ws::SharedFrame>{std::make_shared<const std::string>(name)};
  });
  return offset;
}

std::vector<std::string> names(const RecoveryStore::Restored& r) {
  std::vector<std::string> out;
  for (const auto& f : r.missed) out.push_back(*f);
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
  auto r = store.restore(0, "pid1", last);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->sid, "sid1");
  EXPECT_EQ(r->pid, "pid1");
  EXPECT_EQ(r->rooms, (std::vector<std::string>{"sid1", "r"}));
  EXPECT_EQ(names(*r), (std::vector<std::string>{"everyone", "room r", "everyone except x", "own id", "direct"}));
}

TEST(Recovery, UnknownSessionOrOffsetIsNotRecovered) {
  RecoveryStore store;
  enable(store);
  const std::string o = log_packet(store, 0, "a", {});
  store.persist(0, "pid1", "sid1", 7, {"sid1"});
  EXPECT_FALSE(store.restore(0, "nope", o));
  EXPECT_FALSE(store.restore(0, "pid1", "zzzz"));
  EXPECT_FALSE(store.restore(1, "pid1", o));
  EXPECT_TRUE(store.restore(0, "pid1", o));
  // The record stays until the socket is connected again (a refused reconnection can retry).
  EXPECT_TRUE(store.restore(0, "pid1", o));
  store.forget(0, "pid1");
  EXPECT_FALSE(store.restore(0, "pid1", o));
  EXPECT_EQ(store.stats().recovered, 1u);
}

TEST(Recovery, RecordsAndPacketsExpireWithTheWindow) {
  RecoveryStore store;
  enable(store, 50);
  const std::string o = log_packet(store, 0, "a", {});
  store.persist(0, "pid1", "sid1", 7, {"sid1"});
  EXPECT_EQ(store.stats().sessions, 1u);
  std::this_thread::sleep_for(std::chrono::milliseconds(120));
  EXPECT_FALSE(store.restore(0, "pid1", o));
  const auto s = store.stats();
  EXPECT_EQ(s.sessions, 0u);
  EXPECT_EQ(s.packets, 0u);
  EXPECT_EQ(s.bytes, 0u);
  EXPECT_EQ(s.expired, 1u);
}

TEST(Recovery, TheLogIsBoundedInBytes) {
  RecoveryStore store;
  enable(store, 60000, 4096);
  const std::string first = log_packet(store, 0, std::string(1000, 'a'), {});
  store.persist(0, "pid1", "sid1", 7, {"sid1"});
  for (int i = 0; i < 20; ++i) log_packet(store, 0, std::string(1000, 'b'), {});
  const auto s = store.stats();
  EXPECT_LE(s.bytes, 4096u);
  EXPECT_GT(s.evicted, 0u);
  // Its offset went with the oldest packets: it connects as new.
  EXPECT_FALSE(store.restore(0, "pid1", first));
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
