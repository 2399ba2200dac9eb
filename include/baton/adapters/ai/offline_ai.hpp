#pragma once
// The offline AI provider: deterministic answers computed from the request, no network, no model.
// It is what the demo and the tests use when no provider is configured, and it says so: its
// provider() is "offline" and every answer's model is "baton-offline".
//
// It answers the reference pipeline's formats (see ports::plan_format / files_format):
// - plan/v1: a plan with a README, a script and a notes file. A task whose text holds
//   "unplannable" gets an invalid plan every time (a poison task, for the dead-letter path).
// - files/v1: the planned files' content, read from the "Plan: {...}" line of the request. For one
//   task in eight (bits 32-34 of the FNV-1a hash of its text are 0) the first answer leaves out the last planned file, so
//   certification fails once and the fix round with the findings is exercised; an answer to a
//   request that carries certification findings is always complete.
// Anything else gets an echo of the last user message. Token usage is a word count, labelled as an
// estimate by the model name.

#include <memory>

#include "baton/ports/ai_api.hpp"

namespace baton::adapters::ai {

std::unique_ptr<ports::AiApi> make_offline_ai();

}  // namespace baton::adapters::ai
