// OpenAPI pieces every route's schema uses: the JSON error body our error handler sends, and a JSON
// payload inside an event's `data` (OpenAPI 3.2.0, "Special Considerations for Server-Sent Events":
// events are described after SSE parsing, so `data` is a string whose JSON is the `contentSchema`).

const errorBody = {
  type: 'object',
  properties: {
    statusCode: { type: 'integer' },
    code: { type: 'string' },
    error: { type: 'string' },
    message: { type: 'string' }
  }
}

/** A response with our JSON error body. */
export const jsonError = (description: string): object => ({ description, content: { 'application/json': { schema: errorBody } } })

/** A JSON payload inside an event's `data`. */
export const jsonData = (schema: object): object => ({ type: 'string', contentMediaType: 'application/json', contentSchema: schema })
