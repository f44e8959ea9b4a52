// The cipher behind public ids: AES-128 on one block, with a key drawn from the system's
// random source when the server starts. OpenSSL does the cryptography.
#pragma once

#include <cstdint>

namespace sidewire::eio {

class IdCipher {
 public:
  IdCipher();  // a fresh random key; throws std::runtime_error when none can be had
  IdCipher(const IdCipher&) = delete;
  IdCipher& operator=(const IdCipher&) = delete;
  // One 16-byte block each way; any thread. False only if OpenSSL fails.
  bool encrypt(const std::uint8_t in[16], std::uint8_t out[16]) const;
  bool decrypt(const std::uint8_t in[16], std::uint8_t out[16]) const;

 private:
  bool run(bool encrypting, const std::uint8_t in[16], std::uint8_t out[16]) const;
  std::uint8_t key_[16];
};

}  // namespace sidewire::eio
