// POST /v1/chat/completions: the built-in demo model (work in progress).
import type { FastifyPluginAsync } from 'fastify'

export interface DemoModelOptions {
  tokenDelayMs: number
}

const demoModel: FastifyPluginAsync<DemoModelOptions> = async () => {}
export default demoModel
