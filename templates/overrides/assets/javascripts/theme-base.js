/* mkdocs-material 9.x: the inline script of partials/javascripts/base.html, as a file (no inline code in
 * the pages). The storage scope is the site root: two folders above this file (or the theme's extra.scope,
 * resolved against the page as the theme does). The rest is the theme's code unchanged. */
__md_scope=document.currentScript.dataset.scope?new URL(document.currentScript.dataset.scope,location):new URL("../..",document.currentScript.src),__md_hash=e=>[...e].reduce(((e,_)=>(e<<5)-e+_.charCodeAt(0)),0),__md_get=(e,_=localStorage,t=__md_scope)=>JSON.parse(_.getItem(t.pathname+"."+e)),__md_set=(e,_,t=localStorage,a=__md_scope)=>{try{t.setItem(a.pathname+"."+e,JSON.stringify(_))}catch(e){}}
