// Swagger UI shows a `text/event-stream` response as "Schema: string": it does not render the
// OpenAPI 3.2 `itemSchema` that describes each event. At spec time (@fastify/swagger's
// `transformObject`) each such response gets its events written out where Swagger UI does show
// them: a Markdown list in the response's `description` (event name, what it means, the JSON
// schema of its `data`), and an `example` of the wire text instead of "string". The `itemSchema`
// itself stays for tools that read it (Scalar, code generators).

type Json = Record<string, any>

interface EventDoc {
  name: string
  description: string | undefined
  /** The schema of `data` after JSON decoding, or of the raw string. */
  data: Json | undefined
  json: boolean
}

/** The events an `itemSchema` allows: one per `oneOf`/`anyOf` branch, or the schema itself. */
export function eventsOf (itemSchema: Json): EventDoc[] {
  const branches: Json[] = itemSchema.oneOf ?? itemSchema.anyOf ?? [itemSchema]
  return branches.map((branch) => {
    const props: Json = branch.properties ?? {}
    const event = props.event
    const name = typeof event?.const === 'string'
      ? event.const
      : Array.isArray(event?.enum) ? event.enum.join(' | ') : 'message'
    const data: Json | undefined = props.data
    const json = data?.contentMediaType === 'application/json'
    return { name, description: branch.description, data: json ? data?.contentSchema : data, json }
  })
}

/** A small value that fits `schema`, for the example wire text. */
function sample (schema: Json | undefined, depth = 0): unknown {
  if (schema === undefined || depth > 4) return null
  if ('const' in schema) return schema.const
  if (Array.isArray(schema.enum)) return schema.enum[0]
  if (schema.example !== undefined) return schema.example
  if (Array.isArray(schema.examples) && schema.examples.length > 0) return schema.examples[0]
  const type = Array.isArray(schema.type) ? schema.type.find((t: string) => t !== 'null') : schema.type
  if (type === 'object') {
    const out: Json = {}
    for (const [key, value] of Object.entries<Json>(schema.properties ?? {})) out[key] = sample(value, depth + 1)
    return out
  }
  if (type === 'array') return [sample(schema.items, depth + 1)]
  if (type === 'integer' || type === 'number') return schema.minimum ?? 0
  if (type === 'boolean') return true
  if (type === 'string') return 'text'
  const branch = schema.oneOf?.[0] ?? schema.anyOf?.[0]
  return branch === undefined ? null : sample(branch, depth + 1)
}

function describe (events: EventDoc[]): string {
  const lines = ['', '', '**Events** (one per `event:` name; `message` is an event with no `event:` line):', '']
  for (const ev of events) {
    lines.push(`- \`${ev.name}\`${ev.description === undefined ? '' : ` — ${String(ev.description)}`}`)
    if (ev.data !== undefined) {
      lines.push(`  \`data\`${ev.json ? ' (JSON)' : ''}:`, '', '  ```json')
      for (const line of JSON.stringify(ev.data, null, 2).split('\n')) lines.push('  ' + line)
      lines.push('  ```')
    }
  }
  return lines.join('\n')
}

function example (events: EventDoc[]): string {
  return events.map((ev) => {
    const value = sample(ev.data)
    const data = ev.json ? JSON.stringify(value) : typeof value === 'string' ? value : String(value ?? '')
    return `${ev.name === 'message' ? '' : `event: ${ev.name}\n`}data: ${data}\n`
  }).join('\n')
}

/** For @fastify/swagger's `transformObject`: returns the document with SSE responses described. */
export function describeEventStreams ({ openapiObject }: { openapiObject: Json }): Json {
  for (const operations of Object.values<Json>(openapiObject.paths ?? {})) {
    for (const operation of Object.values<Json>(operations)) {
      for (const response of Object.values<Json>(operation?.responses ?? {})) {
        const stream = response?.content?.['text/event-stream']
        if (stream?.itemSchema === undefined || response.description?.includes('**Events**') === true) continue
        const events = eventsOf(stream.itemSchema)
        response.description = String(response.description ?? '') + describe(events)
        stream.example ??= example(events)
      }
    }
  }
  return openapiObject
}
