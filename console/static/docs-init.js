// Starts Swagger UI on /docs; a file of its own so that the page's policy forbids inline scripts.
window.ui = SwaggerUIBundle({
  url: "/openapi.json",
  dom_id: "#swagger-ui",
  layout: "BaseLayout",
  deepLinking: true,
  presets: [SwaggerUIBundle.presets.apis],
  // The default would send the document to validator.swagger.io for a badge.
  validatorUrl: null,
});
