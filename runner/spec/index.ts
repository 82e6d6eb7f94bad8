/** The pipeline spec: YAML files → the resolved `Pipeline` model, or diagnostics at file:line:col. */
export { loadWorkspaceCached, loadWorkspaceCachedOrThrow, readSpecCache, SPEC_CACHE_PATH, SPEC_CACHE_VERSION } from './cached-load.js';
export { SPEC_CODES, sortDiagnostics } from './diagnostics.js';
export type { SpecCode } from './diagnostics.js';
export { closest, didYouMean, editDistance } from './did-you-mean.js';
export { interpolate } from './interpolate.js';
export { linkWorkspace } from './link.js';
export { fsSpecContext, loadWorkspace, loadWorkspaceOrThrow, loadWorkspaceTraced } from './load.js';
export type { FileStamp, LoadTrace } from './load.js';
export { DEFAULT_PARAMS_FILE, parsePipelineFile, pipelineNameOf } from './parse.js';
export { isWithin, normaliseWorkspacePath } from './paths.js';
export { pipelineOrThrow } from './result.js';
export { PipelineFileSchema, pipelineJsonSchema, pipelineJsonSchemaText } from './schema.js';
export type { DefaultsInput, PipelineFileInput, StageInput } from './schema.js';
export type { DeclaredStage, LoadResult, ParseResult, SpecContext, StageSource } from './types.js';
export { parseMemory, parseTimeLimit } from './units.js';
