// Little-endian byte-buffer writer/reader used by the safekeeper's own
// on-disk formats. The reader never reads past the end: every get_* returns
// false once the input is exhausted. Values, not thread-safe.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>

namespace wp::sk {

class ByteWriter {
public:
    void u8(std::uint8_t v) { out_.push_back(static_cast<char>(v)); }
    void u32(std::uint32_t v) { for (int i = 0; i < 4; ++i) u8(static_cast<std::uint8_t>(v >> (8 * i))); }
    void u64(std::uint64_t v) { for (int i = 0; i < 8; ++i) u8(static_cast<std::uint8_t>(v >> (8 * i))); }
    void bytes(const void* p, std::size_t n) { out_.append(static_cast<const char*>(p), n); }
    std::string& str() { return out_; }

private:
    std::string out_;
};

class ByteReader {
public:
    ByteReader(const char* p, std::size_t n) : p_(p), n_(n) {}
    bool u8(std::uint8_t& v) {
        if (n_ < 1) return false;
        v = static_cast<std::uint8_t>(*p_);
        ++p_; --n_;
        return true;
    }
    bool u32(std::uint32_t& v) {
        if (n_ < 4) return false;
        v = 0;
        for (int i = 0; i < 4; ++i) v |= static_cast<std::uint32_t>(static_cast<std::uint8_t>(p_[i])) << (8 * i);
        p_ += 4; n_ -= 4;
        return true;
    }
    bool u64(std::uint64_t& v) {
        if (n_ < 8) return false;
        v = 0;
        for (int i = 0; i < 8; ++i) v |= static_cast<std::uint64_t>(static_cast<std::uint8_t>(p_[i])) << (8 * i);
        p_ += 8; n_ -= 8;
        return true;
    }
    bool bytes(void* out, std::size_t n) {
        if (n_ < n) return false;
        std::memcpy(out, p_, n);
        p_ += n; n_ -= n;
        return true;
    }
    bool string(std::string& out, std::size_t n) {
        if (n_ < n) return false;
        out.assign(p_, n);
        p_ += n; n_ -= n;
        return true;
    }
    std::size_t remaining() const { return n_; }

private:
    const char* p_;
    std::size_t n_;
};

}  // namespace wp::sk
