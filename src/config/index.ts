export { loadConfig, configFromEnvironment, logSettingsFromEnvironment, ConfigError, redactUrl, CONFIG_DOCS } from './config.js';
export type { Config } from './types.js';
