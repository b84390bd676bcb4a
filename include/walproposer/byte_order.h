// Fixed-width integers in byte buffers, with the byte order always spelled
// out: the project's one encoder/decoder of integers, used by the protocol
// codec (little-endian, docs/protocol.md), the safekeeper's on-disk formats
// (little-endian, docs/storage.md), PostgreSQL's WAL (little-endian on the
// platforms we build for) and the PostgreSQL v3 wire protocol (big-endian).
//
// Contract:
//  - get_{le,be}{16,32,64}(p) read from p[0..N): the caller guarantees the
//    bytes are there (use ByteReader when they may not be).
//  - store_{le,be}{16,32,64}(p, v) overwrite p[0..N).
//  - put_{le,be}{16,32,64}(out, v) append to `out`, any container of bytes
//    with push_back (std::string, std::vector<char>,
//    std::vector<std::uint8_t>).
//  - ByteWriter appends to a caller-owned buffer; ByteReader is
//    bounds-checked: it never reads past its end, and after the first read
//    that would, it is failed for good (every later read returns false and
//    leaves its output untouched, remaining() is 0).
// No allocation beyond the caller's buffer; values, not thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>

namespace wp {

namespace byte_order_detail {
template <typename T>
inline T get_le(const void* p) {
    const auto* b = static_cast<const std::uint8_t*>(p);
    T v = 0;
    for (std::size_t i = 0; i < sizeof(T); ++i)
        v |= static_cast<T>(static_cast<T>(b[i]) << (8 * i));
    return v;
}
template <typename T>
inline T get_be(const void* p) {
    const auto* b = static_cast<const std::uint8_t*>(p);
    T v = 0;
    for (std::size_t i = 0; i < sizeof(T); ++i) v = static_cast<T>((v << 8) | b[i]);
    return v;
}
template <typename T>
inline void store_le(void* p, T v) {
    auto* b = static_cast<std::uint8_t*>(p);
    for (std::size_t i = 0; i < sizeof(T); ++i) b[i] = static_cast<std::uint8_t>(v >> (8 * i));
}
template <typename T>
inline void store_be(void* p, T v) {
    auto* b = static_cast<std::uint8_t*>(p);
    for (std::size_t i = 0; i < sizeof(T); ++i)
        b[i] = static_cast<std::uint8_t>(v >> (8 * (sizeof(T) - 1 - i)));
}
template <typename T, typename Bytes>
inline void put_le(Bytes& out, T v) {
    using Byte = typename Bytes::value_type;
    for (std::size_t i = 0; i < sizeof(T); ++i) out.push_back(static_cast<Byte>(v >> (8 * i)));
}
template <typename T, typename Bytes>
inline void put_be(Bytes& out, T v) {
    using Byte = typename Bytes::value_type;
    for (std::size_t i = 0; i < sizeof(T); ++i)
        out.push_back(static_cast<Byte>(v >> (8 * (sizeof(T) - 1 - i))));
}
}  // namespace byte_order_detail

inline std::uint16_t get_le16(const void* p) {
    return byte_order_detail::get_le<std::uint16_t>(p);
}
inline std::uint32_t get_le32(const void* p) {
    return byte_order_detail::get_le<std::uint32_t>(p);
}
inline std::uint64_t get_le64(const void* p) {
    return byte_order_detail::get_le<std::uint64_t>(p);
}
inline std::uint16_t get_be16(const void* p) {
    return byte_order_detail::get_be<std::uint16_t>(p);
}
inline std::uint32_t get_be32(const void* p) {
    return byte_order_detail::get_be<std::uint32_t>(p);
}
inline std::uint64_t get_be64(const void* p) {
    return byte_order_detail::get_be<std::uint64_t>(p);
}

inline void store_le16(void* p, std::uint16_t v) {
    byte_order_detail::store_le(p, v);
}
inline void store_le32(void* p, std::uint32_t v) {
    byte_order_detail::store_le(p, v);
}
inline void store_le64(void* p, std::uint64_t v) {
    byte_order_detail::store_le(p, v);
}
inline void store_be16(void* p, std::uint16_t v) {
    byte_order_detail::store_be(p, v);
}
inline void store_be32(void* p, std::uint32_t v) {
    byte_order_detail::store_be(p, v);
}
inline void store_be64(void* p, std::uint64_t v) {
    byte_order_detail::store_be(p, v);
}

template <typename Bytes>
inline void put_le16(Bytes& out, std::uint16_t v) {
    byte_order_detail::put_le(out, v);
}
template <typename Bytes>
inline void put_le32(Bytes& out, std::uint32_t v) {
    byte_order_detail::put_le(out, v);
}
template <typename Bytes>
inline void put_le64(Bytes& out, std::uint64_t v) {
    byte_order_detail::put_le(out, v);
}
template <typename Bytes>
inline void put_be16(Bytes& out, std::uint16_t v) {
    byte_order_detail::put_be(out, v);
}
template <typename Bytes>
inline void put_be32(Bytes& out, std::uint32_t v) {
    byte_order_detail::put_be(out, v);
}
template <typename Bytes>
inline void put_be64(Bytes& out, std::uint64_t v) {
    byte_order_detail::put_be(out, v);
}

// Appends to a caller-owned byte container (see put_*).
template <typename Bytes>
class ByteWriter {
  public:
    explicit ByteWriter(Bytes& out) : out_(out) {}
    void u8(std::uint8_t v) { out_.push_back(static_cast<typename Bytes::value_type>(v)); }
    void le16(std::uint16_t v) { put_le16(out_, v); }
    void le32(std::uint32_t v) { put_le32(out_, v); }
    void le64(std::uint64_t v) { put_le64(out_, v); }
    void be16(std::uint16_t v) { put_be16(out_, v); }
    void be32(std::uint32_t v) { put_be32(out_, v); }
    void be64(std::uint64_t v) { put_be64(out_, v); }
    void bytes(const void* p, std::size_t n) {
        const auto* b = static_cast<const typename Bytes::value_type*>(p);
        out_.insert(out_.end(), b, b + n);
    }
    std::size_t size() const { return out_.size(); }
    Bytes& out() { return out_; }

  private:
    Bytes& out_;
};

// Bounds-checked reader over [p, p + n) (see the contract above).
class ByteReader {
  public:
    ByteReader(const void* p, std::size_t n) : p_(static_cast<const std::uint8_t*>(p)), n_(n) {}

    // false once a read has run past the end.
    bool ok() const { return ok_; }
    std::size_t remaining() const { return ok_ ? n_ - pos_ : 0; }

    bool u8(std::uint8_t& v) {
        const std::uint8_t* b = take(1);
        if (b) v = *b;
        return b != nullptr;
    }
    bool le16(std::uint16_t& v) { return get(v, get_le16); }
    bool le32(std::uint32_t& v) { return get(v, get_le32); }
    bool le64(std::uint64_t& v) { return get(v, get_le64); }
    bool be16(std::uint16_t& v) { return get(v, get_be16); }
    bool be32(std::uint32_t& v) { return get(v, get_be32); }
    bool be64(std::uint64_t& v) { return get(v, get_be64); }
    bool bytes(void* out, std::size_t k) {
        const std::uint8_t* b = take(k);
        if (b && k) std::memcpy(out, b, k);
        return b != nullptr;
    }
    bool string(std::string& out, std::size_t k) {
        const std::uint8_t* b = take(k);
        if (b) out.assign(reinterpret_cast<const char*>(b), k);
        return b != nullptr;
    }
    // The next k bytes (advancing past them), or nullptr (and failed) when
    // fewer than k remain.
    const std::uint8_t* take(std::size_t k) {
        if (!ok_ || n_ - pos_ < k) {
            ok_ = false;
            return nullptr;
        }
        const std::uint8_t* at = p_ + pos_;
        pos_ += k;
        return at;
    }

  private:
    template <typename T>
    bool get(T& v, T (*decode)(const void*)) {
        const std::uint8_t* b = take(sizeof(T));
        if (b) v = decode(b);
        return b != nullptr;
    }

    const std::uint8_t* p_;
    std::size_t n_;
    std::size_t pos_ = 0;
    bool ok_ = true;
};

}  // namespace wp
