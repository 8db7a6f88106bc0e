// GET /page-config.json: what the demo page shows before the first answer — which model answers,
// and whether it is the built-in demo model. Only what the page needs; never the upstream's URL or
// key (an LLM_BASE_URL may carry credentials or name an internal host).
import type { FastifyPluginAsync } from 'fastify'
import type { LlmConfig } from './config.js'
import { DEMO_MODEL } from '../routes/demo-model/index.js'

const pageConfig: FastifyPluginAsync<{ llm: LlmConfig }> = async (app, { llm }) => {
  const demo = llm.baseURL === undefined
  // With an upstream and no LLM_MODEL, the model is the first the upstream lists: known only
  // once it answers, so the page shows it after the first answer.
  const body = { model: demo ? DEMO_MODEL : llm.model ?? null, demo }
  app.get('/page-config.json', {
    schema: {
      tags: ['service'],
      summary: 'What the demo page shows before the first answer',
      response: {
        200: {
          type: 'object',
          required: ['model', 'demo'],
          properties: {
            model: { type: ['string', 'null'], description: 'The model /events uses by default; `null` when the upstream chooses.' },
            demo: { type: 'boolean', description: 'True when /events answers with the built-in demo model.' }
          }
        }
      }
    }
  }, async () => body)
}

export default pageConfig
