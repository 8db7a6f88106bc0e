// The OpenAPI descriptions of /events (routes/events/index.ts): what Swagger UI shows a reader.

export const DESCRIPTION = `Streams an answer from the configured OpenAI-compatible LLM (or the built-in demo model) as
Server-Sent Events.

- Default \`message\` events: the raw text of one token (newlines and leading spaces included; with
  \`format=json\` a JSON string instead, exact even for \`\\r\`). Ids are \`<generation>:<seq>\`.
- \`done\`: \`{ finish_reason, usage, model, demo }\`, then the stream ends. Close your EventSource on it,
  or it reconnects. \`finish_reason\` is \`stopped\` after a stop.
- \`error\`: \`{ code, message, statusCode }\` when the upstream fails after the stream has started.

Failures before the stream starts are HTTP errors with a JSON body: 400 bad input, 429 rate limited
(here, too many answers at once, or upstream; \`retry-after\` is set), 502 upstream unreachable, misconfigured or failing,
504 no first token in time.

Resuming (on by default): the generation runs on without the connection. A reconnect carrying
\`Last-Event-ID: <generation>:<n>\` (header, or \`?lastEventId=\` for a first request) replays the tokens
after \`n\` and follows live, without asking the upstream again. A reconnect to a finished generation,
or to one that is unknown, expired or started by another client, gets 204 (which stops an EventSource)
— or 404 \`SSE_ERR_GENERATION_NOT_FOUND\` for a POST that asked to resume explicitly. A generation with
no client attached is aborted upstream after the grace period; \`DELETE /events/{generation}\` stops it
at once. Without resuming, a reconnect carrying one of our ids gets 204 and a disconnect aborts the
upstream at once.`

export const STOP_DESCRIPTION = `Stops a resumable generation at once, whoever is attached: its upstream request is
aborted and attached clients get \`done\` with \`finish_reason: "stopped"\`. Only the client that started it may
stop it; any other id is 404. Stop is not a disconnect: closing the stream alone keeps the generation
running for the grace period, so the client can come back.`
