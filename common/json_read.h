#pragma once
// Reading JSON from outside (peers, APIs, Redis) without trusting its shape: a member
// that is missing, or present with another type, reads as absent. nlohmann's own
// accessors (operator[], value(), get<>) throw on such input; these never do.

#include <nlohmann/json.hpp>

#include <string>

namespace birdwatch::json_read {

inline const nlohmann::json* member(const nlohmann::json* j, const char* key) {
    if (!j || !j->is_object()) return nullptr;
    const auto it = j->find(key);
    return it == j->end() ? nullptr : &*it;
}
inline const nlohmann::json* member(const nlohmann::json& j, const char* key) { return member(&j, key); }

inline const std::string* string_at(const nlohmann::json* j) {
    return j && j->is_string() ? &j->get_ref<const std::string&>() : nullptr;
}

inline std::string string_or(const nlohmann::json* j, std::string fallback) {
    const std::string* s = string_at(j);
    return s ? *s : fallback;
}

inline long long integer_or(const nlohmann::json* j, long long fallback) {
    return j && j->is_number_integer() ? j->get<long long>() : fallback;
}

}  // namespace birdwatch::json_read
