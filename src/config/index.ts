export { loadConfig, configFromEnvironment, ConfigError, redactUrl, CONFIG_DOCS, type Config } from './config.js';
