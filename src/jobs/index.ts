export { default as pruningPlugin, PRUNE_INTERVAL_SECONDS } from './pruning.js'
