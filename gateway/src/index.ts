export { startGateway, type Gateway, type StartOptions } from "./gateway.js";
export { compileOptions, DEFAULTS, type GatewayOptions } from "./config.js";
export { createLogger, type Logger } from "./logger.js";
